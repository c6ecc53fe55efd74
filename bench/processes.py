"""Start and stop the platform's own processes (a worker, daphne) for a benchmark run."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def process_start(
    command: list[str], *, log_name: str, ready: bytes, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """Run `command` in its own process group, logging to var/`log_name`, and wait (up to
    60 s) until the log shows `ready`."""
    (ROOT / "var").mkdir(exist_ok=True)
    path = ROOT / "var" / log_name
    log = open(path, "wb")  # noqa: SIM115 - kept open for the child
    process = subprocess.Popen(  # noqa: S603 - our own fixed command lines
        command,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if ready in path.read_bytes():
            return process
        if process.poll() is not None:
            break
        time.sleep(0.2)
    process_stop(process)
    raise SystemExit(f"{' '.join(command[1:4])} did not start; see {path}")


def process_stop(process: subprocess.Popen) -> None:
    """SIGTERM the process group, SIGKILL it after 30 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
