#!/usr/bin/env bash
# Runs inside `python -m config.embedded exec`, so DATABASE_URL and REDIS_URL are set.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-config.settings.dev}"
python manage.py migrate --noinput
python manage.py collectstatic --noinput -v 0
python manage.py seed_demo
exec honcho start -f Procfile
