#!/usr/bin/env bash
# Installs what is needed, builds portico and serves the example site on http://127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
echo "serving examples/static on http://127.0.0.1:8000/ (Ctrl-C to stop)"
exec build/portico --bind 127.0.0.1:8000 --static /=examples/static/ --access-logfile - "$@"
