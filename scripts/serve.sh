#!/usr/bin/env bash
# Install Dockyard into ./.venv and serve it on 127.0.0.1:5000 with data in ./data.
# Extra arguments go to `dockyard serve` (for example --port 5001 --workers 2).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e .
exec .venv/bin/dockyard serve --host 127.0.0.1 --port 5000 --data-dir ./data "$@"
