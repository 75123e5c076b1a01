#!/usr/bin/env bash
# Installs what is needed, builds portico and serves the example Django site on
# http://127.0.0.1:8000 (admin: /admin/, user admin, password admin; JSON: /api/books/).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
examples/django/setup.sh
echo "serving examples/django on http://127.0.0.1:8000/ (Ctrl-C to stop)"
exec build/portico --bind 127.0.0.1:8000 --chdir examples/django --static /static/=staticfiles/ \
  --access-logfile - "$@" mysite.wsgi:application
