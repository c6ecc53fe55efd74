"""Job functions for the sandbox tests; they run INSIDE the sandbox child.

They stand in for the event-path engine (apps/engine/events.py, written separately): build
a minimal sdk-like object, call the script's `main(sdk, params)` once per bar, and return
what the script did.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from apps.engine.sandbox import JobContext


class MiniSdk:
    """The smallest sdk a script can trade with: closes so far, buy/sell, state, log."""

    def __init__(self, closes: list[float]) -> None:
        self._all = closes
        self.bar = 0
        self.close: list[float] = []
        self.state: dict[str, Any] = {}
        self.calls: list[dict[str, Any]] = []
        self.position = 0.0

    def advance(self, bar: int) -> None:
        self.bar = bar
        self.close = self._all[: bar + 1]

    def buy(self, size: float = 1.0) -> None:
        self.position += size
        self.calls.append({"bar": self.bar, "side": "buy", "size": size})

    def sell(self, size: float = 1.0) -> None:
        self.position -= size
        self.calls.append({"bar": self.bar, "side": "sell", "size": size})

    def log(self, message: Any) -> None:
        self.calls.append({"bar": self.bar, "log": str(message)})


def loop_over_bars(ctx: JobContext) -> dict[str, Any]:
    closes = [float(x) for x in ctx.arrays["close"]]
    sdk = MiniSdk(closes)
    for bar in range(len(closes)):
        sdk.advance(bar)
        ctx.main(sdk, ctx.params)
    return {"calls": sdk.calls, "position": sdk.position, "bars": len(closes)}


class FastSdk:
    """Per-bar sdk that does not copy: for measuring the per-call overhead."""

    def __init__(self, closes: Any) -> None:
        self.closes = closes
        self.bar = 0
        self.price = 0.0
        self.buys = 0

    def buy(self) -> None:
        self.buys += 1


def time_main_calls(ctx: JobContext) -> dict[str, Any]:
    import time

    closes = ctx.arrays["close"].tolist()
    sdk = FastSdk(closes)
    main = ctx.main.fn
    params = ctx.params
    started, cpu_started = time.perf_counter(), time.process_time()
    for bar, price in enumerate(closes):
        sdk.bar = bar
        sdk.price = price
        main(sdk, params)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return {"bars": len(closes), "seconds": elapsed, "cpu_seconds": cpu, "buys": sdk.buys}


def echo_arrays(ctx: JobContext) -> dict[str, Any]:
    out: dict[str, Any] = {
        name: arr * 2 if arr.dtype.kind in "biufc" else arr for name, arr in ctx.arrays.items()
    }
    out["data"] = ctx.data
    out["params"] = ctx.params
    return out


def probe_child(ctx: JobContext) -> dict[str, Any]:
    """Trusted code inside the child, after the lock-down: what still works?"""
    found: dict[str, Any] = {"uid": os.getuid(), "env": sorted(os.environ)}
    for label, attempt in (
        ("open_read", lambda: open("/etc/hostname").close()),
        ("open_write", lambda: open("/tmp/sandbox-probe", "w").close()),
        ("socket", _socket),
        ("fork", _fork),
    ):
        try:
            attempt()
            found[label] = "allowed"
        except OSError as exc:
            found[label] = f"refused: {exc.strerror or exc}"
    return found


def _socket() -> None:
    import socket

    socket.socket().close()


def _fork() -> None:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - only if fork worked
        os._exit(0)
    os.waitpid(pid, 0)


def die_by_signal(ctx: JobContext) -> None:
    ctx.main(None, ctx.params)
    os.kill(os.getpid(), getattr(signal, (ctx.data or {}).get("signal", "SIGSEGV")))


def return_unserialisable(ctx: JobContext) -> Any:
    return {"x": object()}


def load_other_source(ctx: JobContext) -> None:
    """Load source the parent never compiled: the child's own compile must refuse it."""
    from apps.engine.sandbox import load_main

    load_main(str(ctx.data["source"]))


def exercise_load_main(ctx: JobContext) -> dict[str, Any]:
    """load_main's API, exercised where it is allowed to run: in the child."""
    from apps.engine.sandbox import ScriptLog, load_main

    log = ScriptLog()
    main = load_main(
        "def main(sdk, params):\n    print('bar', sdk)\n    return params * 2\n", log=log
    )
    out = [main(1, 21), main(2, 1)]
    printer = load_main("def main(sdk, params):\n    print('x', file=sdk)\n")
    try:
        printer(object(), {})
        refused = ""
    except Exception as exc:
        refused = f"{type(exc).__name__}: {exc}"
    return {"out": out, "log": log.text(), "refused": refused}


def pandas_after_lockdown(ctx: JobContext) -> dict[str, Any]:
    """Trusted numpy/pandas work after the lock-down (NOFILE 0, RLIMIT_AS): still works?"""
    import pandas as pd

    close = pd.Series(ctx.arrays["close"])
    sma = close.rolling(3).mean().to_numpy()
    ctx.main(None, ctx.params)
    return {"sma": sma, "std": float(close.std()), "ewm": float(close.ewm(span=3).mean().iloc[-1])}
