"""The processes that serve the registry once `dockyard serve` has checked the
settings and migrated the database.

- `supervisor`: the process `dockyard serve` becomes (`exec`, same process id).
  It imports neither granian nor the application, starts the workers, restarts
  one that dies and stops them all on SIGTERM or SIGINT.
- `granian_worker`: one worker process, granian's server running the ASGI
  application. Every worker accepts on the one listening socket that
  `dockyard serve` bound (its descriptor number in `LISTENER_ENV`), so a
  connection waiting to be accepted is never lost with a worker that stops.
- `uvicorn_server`: the alternative server, which supervises its own workers.

The settings reach the workers in the environment (`SETTINGS_ENV`), already
checked and pickled by `dockyard.settings.to_environment`.
"""

SETTINGS_ENV = "DOCKYARD_SETTINGS"
LISTENER_ENV = "DOCKYARD_LISTENER_FD"
# Connections the kernel queues before a worker accepts them (granian's default).
LISTEN_BACKLOG = 1024
