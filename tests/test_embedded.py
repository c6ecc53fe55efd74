"""config.embedded, the runner behind `make run`, `make check` and `make test`."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EMBED = [sys.executable, "-m", "config.embedded", "exec", "--"]
GIVEN = {
    "DATABASE_URL": "postgres://someone@127.0.0.1:5999/elsewhere",
    "REDIS_URL": "redis://127.0.0.1:6999/3",
}


def embedded(args: list[str], env: dict[str, str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [*EMBED, *args],
        cwd=ROOT,
        env=os.environ | env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


def test_given_urls_are_used_as_they_are_and_nothing_is_started():
    show = "import os; print(os.environ['DATABASE_URL']); print(os.environ['REDIS_URL'])"
    process = embedded([sys.executable, "-c", f"{show}; raise SystemExit(7)"], GIVEN)
    out, err = process.communicate(timeout=60)

    assert process.returncode == 7  # the command's own exit status
    assert out.split() == [GIVEN["DATABASE_URL"], GIVEN["REDIS_URL"]]
    assert "[embedded]" not in err


@pytest.mark.parametrize("argv", [[], ["exec"], ["exec", "--"], ["run", "--", "true"]])
def test_bad_usage_exits_2(argv):
    result = subprocess.run(
        [sys.executable, "-m", "config.embedded", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr


def test_sigterm_to_the_runner_reaches_the_command():
    # A closed terminal or `kill` may hit only the runner; the platform must still stop.
    script = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(42))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    process = embedded([sys.executable, "-c", script], GIVEN)
    assert process.stdout.readline().strip() == "ready"

    process.send_signal(signal.SIGTERM)

    assert process.wait(timeout=30) == 42


def port_is_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ctrl_c_stops_the_command_and_both_embedded_servers(tmp_path):
    pg_port, redis_port = free_port(), free_port()
    env = {
        "DATABASE_URL": "",
        "REDIS_URL": "",
        "TRADELOOP_VAR_DIR": str(tmp_path / "var"),
        "EMBEDDED_PG_PORT": str(pg_port),
        "EMBEDDED_REDIS_PORT": str(redis_port),
    }
    show = "import os; print(os.environ['DATABASE_URL'], os.environ['REDIS_URL'], flush=True)"
    # Its own process group, like a terminal's foreground job.
    process = embedded(
        [sys.executable, "-c", f"{show}; import time; time.sleep(120)"],
        env,
        start_new_session=True,
    )
    try:
        urls = process.stdout.readline().split()
        assert urls == [
            f"postgres://postgres@127.0.0.1:{pg_port}/tradeloop",
            f"redis://127.0.0.1:{redis_port}/0",
        ], urls or process.stderr.read()
        assert port_is_open(pg_port)
        assert port_is_open(redis_port)

        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does

        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert not port_is_open(pg_port)
    assert not port_is_open(redis_port)
    assert "stopping PostgreSQL" in process.stderr.read()
