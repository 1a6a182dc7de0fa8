"""The processes that serve the registry once `dockyard serve` has checked the
settings and migrated the database.

- `supervisor`: the process `dockyard serve` becomes (`exec`, same process id).
  It imports neither granian nor the application, starts the workers, restarts
  one that dies and stops them all on SIGTERM or SIGINT.
- `granian_worker`: one worker process, granian's server running the ASGI
  application on its own `SO_REUSEPORT` socket; the kernel spreads the
  connections over the workers.
- `uvicorn_server`: the alternative server, which supervises its own workers.

The settings reach the workers in the environment (`SETTINGS_ENV`), already
checked and pickled by `dockyard.settings.to_environment`.
"""

SETTINGS_ENV = "DOCKYARD_SETTINGS"
