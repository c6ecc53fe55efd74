"""Environment for subprocesses that must see this test's database and Redis key space."""

import contextlib
import os
import signal
import subprocess
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection


def database_url_for_subprocesses() -> str:
    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgres://{quote(db['USER'], safe='')}{password}@{host}/{db['NAME']}"


def subprocess_env(*, key_prefix: str) -> dict[str, str]:
    """Test settings, the test database, and the Redis db and key prefix of this test."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CELERY_", "PYTEST_", "DJANGO_", "TRADELOOP_"))
    }
    return inherited | {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url_for_subprocesses(),
        "REDIS_URL": settings.REDIS_URL,
        "TRADELOOP_CACHE_PREFIX": key_prefix,
    }


ROOT = Path(__file__).resolve().parents[3]


def process_start(command: list[str], *, env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start a platform process (worker, beat, daphne) in its own session, output to `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so the whole prefork tree can be stopped together
        )


def process_group_stop(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM the main process, as Docker or systemd (KillMode=mixed) stop a service, then
    SIGKILL whatever is left of its group.

    Only the main process is told: a Celery worker then does its warm shutdown and lets its
    pool children finish their task. A SIGTERM to every child (killpg) would kill a task in
    flight and end the worker with WorkerLostError and exit code 1.
    """
    if process.poll() is None:
        process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError):  # the group is gone: all ended on its own
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
