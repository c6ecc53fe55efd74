"""scripts/healthcheck.py, the docker-compose health checks.

Its main() runs in-process for the heartbeat rules (a Django start per check is slow); one
real subprocess proves the script starts on its own as compose runs it.
"""

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.apps.common.processes import subprocess_env

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.django_db


def load_script():
    spec = importlib.util.spec_from_file_location("healthcheck", ROOT / "scripts/healthcheck.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def healthcheck_main():
    return load_script().main


def beat_now(client, prefix: str, kind: str, age_seconds: float = 0) -> None:
    client.set(f"{prefix}:heartbeat:{kind}", f"{time.time() - age_seconds:.3f}", ex=600)


def test_worker_check_follows_the_worker_heartbeat(healthcheck_main, health_prefix, health_redis):
    assert healthcheck_main(["worker"]) == 1

    beat_now(health_redis, health_prefix, "worker")
    assert healthcheck_main(["worker"]) == 0

    beat_now(health_redis, health_prefix, "worker", age_seconds=3600)
    assert healthcheck_main(["worker"]) == 1


def test_beat_check_reads_the_beat_heartbeat(healthcheck_main, health_prefix, health_redis):
    beat_now(health_redis, health_prefix, "worker")
    assert healthcheck_main(["beat"]) == 1

    beat_now(health_redis, health_prefix, "beat")
    assert healthcheck_main(["beat"]) == 0


@pytest.mark.django_db(transaction=True)
def test_web_check_passes_while_worker_and_beat_are_still_down(
    healthcheck_main, live_server, health_prefix, monkeypatch
):
    # Worker and beat wait for web to be healthy, so web's check must not wait for them.
    monkeypatch.setenv("TRADELOOP_PORT", str(live_server.thread.port))
    assert healthcheck_main(["web"]) == 0


def test_the_script_runs_on_its_own_and_fails_when_web_does_not_answer(health_prefix):
    env = subprocess_env(key_prefix=health_prefix) | {"TRADELOOP_PORT": "1"}
    result = subprocess.run(
        [sys.executable, "scripts/healthcheck.py", "web"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "web: no answer (ConnectionRefusedError)" in result.stdout


def test_unknown_kind_is_a_usage_error(healthcheck_main, capsys):
    assert healthcheck_main(["database"]) == 2
    assert "usage" in capsys.readouterr().err
