"""docker-compose.yml, read as YAML (no Docker engine runs here)."""

import shlex
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("web", "worker", "beat")


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict((part.strip() for part in line.split(":", 1)) for line in lines if line.strip())


def test_the_six_services_exist(services):
    assert set(services) == {"postgres", "redis", "web", "worker", "orders", "beat"}


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_reach_the_compose_postgres_and_redis(services, name):
    environment = services[name]["environment"]
    database, redis = urlsplit(environment["DATABASE_URL"]), urlsplit(environment["REDIS_URL"])
    assert database.scheme == "postgres"
    assert database.hostname == "postgres"
    assert redis.scheme == "redis"
    assert redis.hostname == "redis"
    assert environment["DJANGO_SETTINGS_MODULE"] == "config.settings.production"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_must_be_given_their_secrets(services, name):
    # "${VAR:?message}" makes compose refuse to start without the secret: no baked-in default.
    environment = services[name]["environment"]
    for secret in ("DJANGO_SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "KEY_FINGERPRINT_PEPPER"):
        assert environment[secret].startswith(f"${{{secret}:?"), secret


@pytest.mark.parametrize("name", ["worker", "orders", "beat"])
def test_workers_and_beat_run_the_procfile_commands(services, name):
    assert shlex.split(services[name]["command"]) == shlex.split(procfile()[name])


def test_web_serves_daphne_on_all_interfaces_port_8000(services):
    command = services["web"]["command"]
    assert "daphne -b 0.0.0.0 -p 8000 config.asgi:application" in command
    assert "8000:8000" in services["web"]["ports"]


def test_every_service_has_a_healthcheck_and_waits_for_what_it_needs(services):
    for name, service in services.items():
        assert service["healthcheck"]["test"], name
    assert services["web"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    for name in ("worker", "orders", "beat"):
        assert services[name]["depends_on"] == {"web": {"condition": "service_healthy"}}


def test_healthchecks_call_a_script_that_exists(services):
    for name in APP_SERVICES:
        test = services[name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "scripts/healthcheck.py"]
        assert test[3] == name
        assert (ROOT / test[2]).is_file()


def test_the_image_is_built_by_pip_install_from_the_dockerfile(services):
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install ." in dockerfile
    for name in APP_SERVICES:
        assert services[name]["build"] == "."
