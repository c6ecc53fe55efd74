# tradeloop: `make run` starts the platform, `make test` runs every gate.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EMBED := $(BIN)/python -m config.embedded exec --
PYTEST_ARGS ?= -n 2
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test install lint check pytest bench browser clean manage

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null || { echo "error: $(PY) not found; install Python 3.11"; exit 1; }
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: install
	@port=$${TRADELOOP_PORT:-8000}; if (exec 3<>/dev/tcp/127.0.0.1/$$port) 2>/dev/null; then \
	  echo "error: 127.0.0.1:$$port is already in use (another tradeloop?)."; \
	  echo "       Stop that process, or run on another port: TRADELOOP_PORT=8001 make run"; \
	  exit 1; fi
	$(EMBED) bash scripts/run_platform.sh

# Any manage.py command on the database `make run` uses (embedded or DATABASE_URL), e.g.
# make manage CMD=createsuperuser
manage: install
	$(EMBED) $(BIN)/python manage.py $(CMD)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# Browser tests drive Debian's chromium; never a downloaded browser.
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "warning: /usr/bin/chromium missing; browser tests will be skipped"; fi; }

check: install
	DJANGO_SETTINGS_MODULE=config.settings.production DJANGO_SECRET_KEY=ci-dummy-$$(head -c 64 /dev/urandom | base64 | tr -dc 'A-Za-z0-9') \
	  DJANGO_ALLOWED_HOSTS=tradeloop.example FIELD_ENCRYPTION_KEYS=cDJ5cTZGdjd2Mm0wa1dtOXIxdlEyczNiNG41YzZ4N3o= \
	  KEY_FINGERPRINT_PEPPER=ci-dummy-pepper \
	  $(EMBED) $(BIN)/python manage.py check --deploy --fail-level WARNING
	DJANGO_SETTINGS_MODULE=config.settings.test $(EMBED) $(BIN)/python manage.py makemigrations --check --dry-run
	# API-1: the OpenAPI schema is valid and drf-spectacular has nothing to warn about.
	DJANGO_SETTINGS_MODULE=config.settings.test $(EMBED) $(BIN)/python manage.py spectacular --validate --fail-on-warn --file /dev/null

# Browser tests run in their own pytest processes: Playwright's sync API leaves an event
# loop in its thread, which later async_to_sync calls (Channels consumers) refuse to share.
pytest: install browser
	$(EMBED) $(BIN)/pytest $(PYTEST_ARGS) --ignore=tests/browser
	$(EMBED) $(BIN)/pytest $(PYTEST_ARGS) tests/browser

test: lint check pytest

bench: install
	$(EMBED) bash -c 'for f in bench/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done'

clean:
	rm -rf $(VENV) var/staticfiles
