#!/usr/bin/env bash
# Runs inside `python -m config.embedded exec`, so DATABASE_URL and REDIS_URL are set.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-config.settings.dev}"
# honcho hands every process its own PORT (5000, 5100, ...), so the web port has its own name.
export TRADELOOP_PORT="${TRADELOOP_PORT:-8000}"
export TRADELOOP_SITE_URL="${TRADELOOP_SITE_URL:-http://127.0.0.1:${TRADELOOP_PORT}}"

python manage.py migrate --noinput
python manage.py collectstatic --noinput -v 0
python manage.py load_demo_candles
login="$(python manage.py seed_demo)"
echo "$login"

# The login scrolls away under the workers' start-up logs; say it again once the web answers.
# Double fork, so the watcher is never a child (or zombie) of honcho; it ends within 120 s.
( (
  for _ in $(seq 120); do
    if (exec 3<>"/dev/tcp/127.0.0.1/${TRADELOOP_PORT}") 2>/dev/null; then
      printf '\n%s\n tradeloop is ready. Ctrl-C stops everything.\n\n' "$login"
      exit 0
    fi
    sleep 1
  done
) & )

# A closed terminal sends SIGHUP to the whole foreground group, and honcho would die of it
# and orphan web, worker and beat. Ignore it here: config.embedded passes it on to honcho as
# SIGTERM, which stops the processes before the embedded servers go down.
trap '' HUP
exec honcho start -f Procfile
