# tradeloop: one image for web, worker and beat (docker-compose.yml picks the command).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    # The source tree in /app, not the copy pip puts in site-packages, must be what runs:
    # config/env.py finds templates/, static/ and data/ next to it.
    PYTHONPATH=/app \
    TRADELOOP_VAR_DIR=/app/var \
    DJANGO_SETTINGS_MODULE=config.settings.production

WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
COPY config ./config
COPY apps ./apps
RUN pip install .

COPY . .
# Static files are built into the image; dev settings need no secrets to do that.
RUN DJANGO_SETTINGS_MODULE=config.settings.dev python manage.py collectstatic --noinput -v 0 \
    && useradd --create-home --uid 10001 tradeloop \
    && chown -R tradeloop /app/var

USER tradeloop
EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "config.asgi:application"]
