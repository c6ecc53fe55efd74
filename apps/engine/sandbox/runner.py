"""Run a script job in a limited child process; a breach ends that run, never the caller.

    result = run_sandboxed("apps.engine.events:run_script_backtest", source,
                           params={"fast": 10}, arrays={"close": closes}, limits=SandboxLimits())
    if result.error: ...            # SandboxError(kind, message, line)
    else: result.value, result.log

The child is a fresh `python -I` (isolated: no PYTHON* variables, no user site, no cwd on
sys.path) with a minimal environment (no DATABASE_URL, secrets or keys), its own session,
and stdin/stdout/stderr pipes. The parent enforces the wall clock with SIGKILL and reads
the child's CPU time from wait4() to tell a CPU kill from a crash.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy.typing as npt

from apps.engine.sandbox.compile import compile_strategy
from apps.engine.sandbox.errors import SandboxError
from apps.engine.sandbox.wire import WireError, decode, encode

# The directory that holds the `apps` package this module was imported from.
PROJECT_ROOT = str(Path(__file__).resolve().parents[3])

_BOOTSTRAP = (
    "import sys; sys.path.insert(0, {root!r}); "
    "from apps.engine.sandbox.child import main; sys.exit(main())"
)

_CHILD_ENV = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    # One thread for every maths library: no hidden thread pools eating CPU and address space.
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}


@dataclass(frozen=True)
class SandboxLimits:
    """Per-run limits. memory_mb is a budget ABOVE what the child maps after its imports."""

    cpu_seconds: float = 30.0
    wall_seconds: float = 60.0
    memory_mb: float = 512.0
    max_log_chars: int = 1_000_000
    max_reply_bytes: int = 256 * 2**20
    kill_grace_seconds: float = 2.0

    def __post_init__(self) -> None:
        if self.cpu_seconds <= 0 or self.wall_seconds <= 0 or self.memory_mb <= 0:
            raise ValueError("sandbox limits must be positive")

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpu_seconds": self.cpu_seconds,
            "wall_seconds": self.wall_seconds,
            "memory_mb": self.memory_mb,
            "max_log_chars": self.max_log_chars,
        }


@dataclass
class SandboxResult:
    """One run: either `value` (the job's JSON-able result) or `error`; always the log."""

    value: Any = None
    error: SandboxError | None = None
    log: str = ""
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def unwrap(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


@dataclass
class _ChildExit:
    stdout: bytes
    stderr: bytes
    status: int
    cpu_s: float
    timed_out: bool
    overflow: bool


def _feed(stdin: Any, payload: bytes) -> None:
    with contextlib.suppress(BrokenPipeError, OSError, ValueError):
        stdin.write(payload)
    with contextlib.suppress(BrokenPipeError, OSError, ValueError):
        stdin.close()


def _collect(
    proc: subprocess.Popen[bytes], deadline: float, max_reply: int, max_stderr: int
) -> tuple[bytes, bytes, bool, bool]:
    """Read stdout/stderr until EOF or the deadline; returns (out, err, timed_out, overflow)."""
    assert proc.stdout is not None and proc.stderr is not None
    out = bytearray()
    err = bytearray()
    timed_out = overflow = False
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ, out)
        sel.register(proc.stderr, selectors.EVENT_READ, err)
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            for key, _ in sel.select(timeout=remaining):
                chunk = os.read(key.fd, 1 << 20)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                buf: bytearray = key.data
                buf += chunk
                if buf is err and len(err) > max_stderr:
                    del err[: len(err) - max_stderr]  # keep the tail
                if len(out) > max_reply:
                    overflow = True
                    break
            if overflow:
                break
    return bytes(out), bytes(err), timed_out, overflow


def _kill(pid: int) -> None:
    # Not Popen.kill(): it polls, which would reap the child before _reap can read its rusage.
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _reap(proc: subprocess.Popen[bytes]) -> float:
    """Wait for the child with wait4 (for its CPU time) and tell Popen it is gone."""
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except ChildProcessError:  # someone else (a SIGCHLD handler) reaped it
        proc.returncode = proc.returncode if proc.returncode is not None else 0
        return 0.0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def _close_streams(proc: subprocess.Popen[bytes]) -> None:
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def _run_child(payload: bytes, limits: SandboxLimits) -> tuple[_ChildExit, float]:
    started = time.monotonic()
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and bootstrap, no shell
        [sys.executable, "-I", "-c", _BOOTSTRAP.format(root=PROJECT_ROOT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(_CHILD_ENV),
        cwd="/",
        close_fds=True,
        start_new_session=True,
    )
    writer = threading.Thread(target=_feed, args=(proc.stdin, payload), daemon=True)
    writer.start()
    deadline = started + limits.wall_seconds + limits.kill_grace_seconds
    try:
        out, err, timed_out, overflow = _collect(proc, deadline, limits.max_reply_bytes, 64_000)
    except BaseException:
        _kill(proc.pid)
        _reap(proc)
        _close_streams(proc)
        raise
    if timed_out or overflow:
        _kill(proc.pid)
    cpu_s = _reap(proc)
    writer.join(timeout=1)
    _close_streams(proc)
    child = _ChildExit(out, err, proc.returncode, cpu_s, timed_out, overflow)
    return child, time.monotonic() - started


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _from_exit(child: _ChildExit, limits: SandboxLimits) -> SandboxError:
    """An error for a child that gave no usable reply."""
    tail = child.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
    details = tuple(tail)
    if child.timed_out:
        return SandboxError(
            "timeout",
            f"the script ran past its wall-clock limit of {limits.wall_seconds:g} s",
            None,
            details,
        )
    if child.overflow:
        return SandboxError("crash", "the job's reply exceeded the size limit", None, details)
    if child.status < 0:
        sig = -child.status
        # The child sets soft RLIMIT_CPU >= cpu_seconds and hard = soft + 2 s: a SIGKILL
        # after that much CPU is the kernel's hard limit, anything else is a crash.
        hard_limit_hit = sig == signal.SIGKILL and child.cpu_s >= limits.cpu_seconds + 1.9
        if sig == signal.SIGXCPU or hard_limit_hit:
            return SandboxError(
                "cpu",
                f"the script used up its CPU-time limit of {limits.cpu_seconds:g} s",
                None,
                details,
            )
        return SandboxError(
            "crash", f"the sandbox process was killed by {_signal_name(sig)}", None, details
        )
    return SandboxError(
        "crash",
        f"the sandbox process exited with status {child.status} without a reply",
        None,
        details,
    )


def run_sandboxed(
    job: str,
    source: str,
    *,
    params: Mapping[str, Any] | None = None,
    arrays: Mapping[str, npt.NDArray[Any]] | None = None,
    data: Any = None,
    limits: SandboxLimits | None = None,
    filename: str = "strategy.py",
    preload: Sequence[str] = (),
) -> SandboxResult:
    """Run `job` ("package.module:function") on `source` in a limited child process.

    The job receives a `JobContext` (the loaded `main`, params, arrays, data, log) and
    returns a JSON-able value; top-level numpy arrays of a dict result come back as arrays.
    Never raises for anything the script does: the outcome is in `SandboxResult.error`.
    """
    limits = limits or SandboxLimits()
    try:
        compile_strategy(source, filename)  # fail fast on syntax/forbidden, without a process
    except SandboxError as exc:
        return SandboxResult(error=exc, stats={"spawned": False})
    header = {
        "job": job,
        "source": source,
        "filename": filename,
        "params": dict(params or {}),
        "data": data,
        "limits": limits.to_dict(),
        "preload": list(preload),
    }
    payload = encode(header, arrays)
    child, wall = _run_child(payload, limits)
    stats: dict[str, Any] = {
        "spawned": True,
        "wall_s": round(wall, 4),
        "child_cpu_s": round(child.cpu_s, 3),
        "exit_status": child.status,
    }
    if child.timed_out or child.overflow or not child.stdout:
        return SandboxResult(error=_from_exit(child, limits), stats=stats)
    try:
        reply, reply_arrays = decode(child.stdout)
    except (WireError, ValueError, KeyError) as exc:
        error = SandboxError("crash", f"the sandbox process sent an unreadable reply: {exc}")
        return SandboxResult(error=error, stats=stats)
    stats.update(reply.get("stats") or {})
    log = str(reply.get("log") or "")
    if not reply.get("ok"):
        error = SandboxError.from_dict(reply.get("error") or {})
        return SandboxResult(error=error, log=log, stats=stats)
    value = reply.get("value")
    if isinstance(value, dict):
        for key in reply.get("array_keys") or ():
            value[key] = reply_arrays[key]
    return SandboxResult(value=value, log=log, stats=stats)
