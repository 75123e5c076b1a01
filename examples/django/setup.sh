#!/bin/sh
# Prepares the example for serving: database tables, sample books, collected static files and an
# admin account (admin/admin unless ADMIN_USER/ADMIN_PASSWORD say otherwise). Safe to run again.
# Honours DATABASE_URL (PostgreSQL) like the site itself; PYTHON overrides the interpreter.
set -eu
cd "$(dirname "$0")"
PYTHON=${PYTHON:-/usr/bin/python3}

"$PYTHON" manage.py migrate --noinput
"$PYTHON" manage.py seed
"$PYTHON" manage.py collectstatic --noinput
"$PYTHON" manage.py ensure_superuser --username "${ADMIN_USER:-admin}" \
    --email "${ADMIN_EMAIL:-admin@example.com}" --password "${ADMIN_PASSWORD:-admin}"
