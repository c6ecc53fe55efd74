"""A real `celery worker` and `celery beat`, started from the Procfile's own command lines,
make /healthz report all ok; their heartbeats are what turns it green."""

import shlex
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from tests.apps.common.processes import process_group_stop, process_start, subprocess_env

ROOT = Path(__file__).resolve().parents[3]
# Generous for a loaded CI machine; on an idle one both are up in under 10 s.
WAIT_SECONDS = 60


def procfile_command(name: str) -> list[str]:
    for line in (ROOT / "Procfile").read_text().splitlines():
        process, _, command = line.partition(":")
        if process.strip() == name:
            argv = shlex.split(command)
            assert argv[0] == "celery"
            return [sys.executable, "-m", "celery", *argv[1:]]
    raise AssertionError(f"no {name} in Procfile")


def wait_until_healthy(client) -> dict:
    deadline = time.monotonic() + WAIT_SECONDS
    body: dict = {}
    while time.monotonic() < deadline:
        response = client.get("/healthz")
        body = response.json()
        if response.status_code == 200:
            return body
        time.sleep(0.5)
    raise AssertionError(f"/healthz not ok after {WAIT_SECONDS}s: {body}")


@pytest.mark.django_db(transaction=True)
def test_real_worker_and_beat_turn_healthz_green(client, health_prefix, health_redis, tmp_path):
    assert client.get("/healthz").status_code == 503  # nothing has beaten yet
    env = subprocess_env(key_prefix=health_prefix)
    worker = process_start(procfile_command("worker"), env=env, log=tmp_path / "worker.log")
    beat = process_start(procfile_command("beat"), env=env, log=tmp_path / "beat.log")
    try:
        body = wait_until_healthy(client)
        for process, name in ((worker, "worker"), (beat, "beat")):
            assert process.poll() is None, (tmp_path / f"{name}.log").read_text()
    except AssertionError:
        for name in ("worker", "beat"):
            print(f"--- {name} log ---\n{(tmp_path / f'{name}.log').read_text()[-4000:]}")
        raise
    finally:
        process_group_stop(worker, timeout=20)
        process_group_stop(beat, timeout=20)

    assert body["checks"]["worker"]["age_seconds"] < settings.HEARTBEAT_STALE_AFTER_SECONDS
    assert body["checks"]["beat"]["age_seconds"] < settings.HEARTBEAT_STALE_AFTER_SECONDS
    worker_log = (tmp_path / "worker.log").read_text()[-4000:]
    assert worker.returncode == 0, f"the worker did not shut down cleanly on SIGTERM:\n{worker_log}"
    assert "WorkerLostError" not in worker_log, "SIGTERM killed a task in flight"
