"""The sandbox child: the only process where a user's script runs.

The parent (`runner.run_sandboxed`) starts `python -I -c <bootstrap>` which calls `main()`.
Steps, in order:

1. keep a private copy of stdout for the reply and point fd 1 at stderr, so a stray print
   from any library cannot corrupt the reply;
2. read the whole job message from stdin (header JSON + raw numpy buffers, see `wire`);
3. import the job function (trusted code, a dotted path such as
   "apps.engine.events:run_script_backtest") and the modules it asks to preload;
4. lock the process down (`apply_limits`): RLIMIT_AS (memory budget above what is mapped
   now), RLIMIT_CPU (SIGXCPU at the soft limit, SIGKILL 2 s later), RLIMIT_NOFILE 0 (no new
   file descriptor at all: no open(), socket(), pipe() - existing fds keep working),
   RLIMIT_FSIZE 0, RLIMIT_NPROC 0, RLIMIT_CORE 0, an ITIMER_REAL alarm for the wall clock,
   and, when running as root, a switch to uid/gid 65534 (nobody);
5. compile the script again (never trust the parent's compile) and run its module body,
   then hand `main` to the job, which calls it per bar;
6. write one reply: the job's JSON-able result, or a structured error, plus the print log.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import json
import os
import resource
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from apps.engine.sandbox.compile import ScriptMain, load_main, mark_locked_down
from apps.engine.sandbox.errors import SandboxError, SandboxViolation
from apps.engine.sandbox.script_log import ScriptLog
from apps.engine.sandbox.wire import decode, encode

NOBODY = 65534


@dataclass
class JobContext:
    """What a job function receives: the loaded script and its inputs."""

    main: ScriptMain
    params: dict[str, Any]
    arrays: dict[str, npt.NDArray[Any]]
    data: Any
    log: ScriptLog
    filename: str = "strategy.py"
    stats: dict[str, Any] = field(default_factory=dict)


JobFunction = Callable[[JobContext], Any]


class CpuLimitExceeded(BaseException):
    """Raised in the script by SIGXCPU (soft RLIMIT_CPU)."""


class WallTimeExceeded(BaseException):
    """Raised in the script by the wall-clock alarm."""


def _on_sigxcpu(signum: int, frame: FrameType | None) -> None:
    raise CpuLimitExceeded


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise WallTimeExceeded


def resolve_job(spec: str) -> JobFunction:
    """ "package.module:function" -> the function."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"job must look like 'package.module:function', got {spec!r}")
    fn = importlib.import_module(module_name)
    for part in attr.split("."):
        fn = getattr(fn, part)
    if not callable(fn):
        raise TypeError(f"job {spec!r} is not callable")
    job: JobFunction = fn
    return job


def _vm_bytes(field_name: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _set(limit: int, soft: int, hard: int | None = None) -> None:
    resource.setrlimit(limit, (soft, soft if hard is None else hard))


def apply_limits(limits: dict[str, Any]) -> dict[str, Any]:
    """Lock this process down. Returns what was applied, for the run's stats."""
    info: dict[str, Any] = {}
    memory_mb = float(limits["memory_mb"])
    baseline = _vm_bytes("VmSize")
    address_space = baseline + int(memory_mb * 1024 * 1024)
    _set(resource.RLIMIT_AS, address_space)
    info["baseline_vm_mb"] = round(baseline / 2**20, 1)
    info["rlimit_as_mb"] = round(address_space / 2**20, 1)

    used = resource.getrusage(resource.RUSAGE_SELF)
    used_cpu = used.ru_utime + used.ru_stime
    cpu_soft = max(1, int(used_cpu + float(limits["cpu_seconds"]) + 0.999))
    signal.signal(signal.SIGXCPU, _on_sigxcpu)
    _set(resource.RLIMIT_CPU, cpu_soft, cpu_soft + 2)
    info["rlimit_cpu_s"] = cpu_soft
    info["cpu_before_script_s"] = round(used_cpu, 3)

    _set(resource.RLIMIT_CORE, 0)
    _set(resource.RLIMIT_FSIZE, 0)
    _set(resource.RLIMIT_NPROC, 0)
    _set(resource.RLIMIT_NOFILE, 0)

    info["uid"] = os.getuid()
    if os.geteuid() == 0:
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            info["uid"] = os.getuid()
        except OSError as exc:
            info["uid_error"] = str(exc)

    wall = float(limits["wall_seconds"])
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, wall)
    return info


def _script_frames(tb: TracebackType | None, filename: str) -> list[tuple[int, str]]:
    frames: list[tuple[int, str]] = []
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename == filename:
            frames.append((tb.tb_lineno, code.co_name))
        tb = tb.tb_next
    return frames


def classify(exc: BaseException, filename: str) -> SandboxError:
    """Turn whatever ended the run into a SandboxError with the script's line."""
    if isinstance(exc, SandboxError):
        return exc
    frames = _script_frames(exc.__traceback__, filename)
    line = frames[-1][0] if frames else None
    shown = [f"line {ln}, in {name}" for ln, name in frames]
    if len(shown) > 12:  # deep recursion: the outermost and the innermost calls
        shown = [*shown[:3], f"... {len(shown) - 9} more calls ...", *shown[-6:]]
    details = tuple(shown)
    if isinstance(exc, CpuLimitExceeded):
        return SandboxError("cpu", "the script used up its CPU-time limit", line, details)
    if isinstance(exc, WallTimeExceeded):
        return SandboxError("timeout", "the script ran past its wall-clock limit", line, details)
    if isinstance(exc, MemoryError):
        return SandboxError("memory", "the script ran out of its memory limit", line, details)
    if isinstance(exc, SandboxViolation):
        return SandboxError("forbidden", str(exc), line, details)
    text = str(exc)
    if len(text) > 2000:
        text = text[:2000] + " [...]"
    message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if frames:
        return SandboxError("runtime", message, line, details)
    if isinstance(exc, OSError) and exc.errno == errno.EMFILE:
        message += (
            " (no new files can be opened after the lock-down: import what the job needs "
            "before it, with run_sandboxed(preload=[...]))"
        )
    tail = traceback.format_exception_only(type(exc), exc)
    return SandboxError(
        "crash",
        f"the job failed outside the script: {message}",
        None,
        tuple(s.rstrip() for s in tail),
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _reply_bytes(reply: dict[str, Any], value: Any) -> bytes:
    arrays: dict[str, npt.NDArray[Any]] = {}
    if isinstance(value, dict):
        plain: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(item, np.ndarray) and item.dtype.kind in "biufcmM":
                arrays[str(key)] = item
            else:
                plain[key] = item
        value = plain
    reply["value"] = value
    reply["array_keys"] = list(arrays)
    header = json.loads(json.dumps(reply, default=_jsonable))
    return encode(header, arrays)


def run_job(header: dict[str, Any], arrays: dict[str, npt.NDArray[Any]]) -> bytes:
    """Everything between reading the job and writing the reply; returns the reply."""
    filename = str(header.get("filename") or "strategy.py")
    limits: dict[str, Any] = header["limits"]
    log = ScriptLog(max_chars=int(limits.get("max_log_chars", 1_000_000)))
    stats: dict[str, Any] = {}
    try:
        t0 = time.perf_counter()
        job = resolve_job(str(header["job"]))
        for module in header.get("preload") or ():
            importlib.import_module(str(module))
        stats["import_s"] = round(time.perf_counter() - t0, 4)
        stats.update(apply_limits(limits))
        mark_locked_down()
    except Exception as exc:  # trusted set-up failed: not the script's fault
        failed = SandboxError("crash", f"the sandbox could not start the job: {exc!r}")
        return _reply_bytes(
            {"ok": False, "error": failed.to_dict(), "log": "", "stats": stats}, None
        )

    parachute: bytearray | None = bytearray(4 << 20)  # freed on MemoryError for the reply
    error: SandboxError | None = None
    value: Any = None
    t1 = time.perf_counter()
    try:
        try:
            main = load_main(str(header["source"]), filename, log)
            params = header.get("params") or {}
            ctx = JobContext(main, params, arrays, header.get("data"), log, filename, stats)
            value = job(ctx)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except BaseException as exc:
        parachute = None
        error = classify(exc, filename)
        traceback.clear_frames(exc.__traceback__)  # drop the script's locals (a memory bomb)
        del exc
    stats["run_s"] = round(time.perf_counter() - t1, 4)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    stats["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 3)
    stats["max_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
    del parachute
    reply: dict[str, Any] = {"ok": error is None, "log": log.text(), "stats": stats}
    if error is not None:
        reply["error"] = error.to_dict()
        return _reply_bytes(reply, None)
    try:
        return _reply_bytes(reply, value)
    except (TypeError, ValueError) as exc:
        bad = SandboxError("crash", f"the job returned a result that is not JSON-able: {exc}")
        reply.update(ok=False, error=bad.to_dict())
        return _reply_bytes(reply, None)
    except MemoryError:
        bad = SandboxError("memory", "the result did not fit in the memory limit")
        reply.update(ok=False, error=bad.to_dict(), log="")
        return _reply_bytes(reply, None)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def main() -> int:
    reply_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    raw = sys.stdin.buffer.read()
    with contextlib.suppress(OSError):
        os.close(0)
    header, arrays = decode(raw)
    del raw
    reply = run_job(header, arrays)
    _write_all(reply_fd, reply)
    os.close(reply_fd)
    return 0


if __name__ == "__main__":  # pragma: no cover - the runner uses the -c bootstrap
    sys.exit(main())
