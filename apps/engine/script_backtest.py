"""Backtest a Python script strategy: the event path, run inside the sandbox child.

Two halves:

- `backtest_job(ctx)` runs INSIDE the locked-down sandbox child (`run_sandboxed` imports
  it before the lock-down): it rebuilds the candles from the raw arrays, runs `run_events`
  with a `ScriptStrategy` whose `main` is the script's, and returns trades, the equity curve
  and the script's log lines as plain data.
- `run_script_backtest(source, params, candles, config, limits)` runs in the trusted
  process: it sends the job to the sandbox and turns the reply into a `BacktestReport`
  (metrics, curves, trades) exactly like `run_backtest` does for condition strategies; a
  script that fails, or breaches a limit, raises `ScriptBacktestError` (kind, line).

The script never runs in the trusted process; there is no in-process fallback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from apps.engine.backtest import BacktestReport
from apps.engine.candles import CandleArrays
from apps.engine.event_book import EventConfig
from apps.engine.events import EventResult, run_events
from apps.engine.metrics import compute_metrics, drawdown_curve
from apps.engine.sandbox import JobContext, SandboxError, SandboxLimits, run_sandboxed
from apps.engine.simulator import ExecutionConfig, SimTrade
from apps.engine.strategies.script import ScriptStrategy

JOB = "apps.engine.script_backtest:backtest_job"
CANDLE_FIELDS = ("open", "high", "low", "close", "volume")


class ScriptBacktestError(Exception):
    """The script could not be backtested: bad source, an exception or a breached limit.

    `kind` is the sandbox's (syntax, forbidden, timeout, cpu, memory, runtime, crash) and
    `line` the script's line where known; `log` is what the script printed before it ended.
    """

    def __init__(self, error: SandboxError, log: str = "") -> None:
        self.kind = error.kind
        self.message = error.message
        self.line = error.line
        self.details = error.details
        self.log = log
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f" at line {self.line}" if self.line is not None else ""
        return f"script error ({self.kind}){where}: {self.message}"


@dataclass(frozen=True)
class ScriptBacktestReport(BacktestReport):
    """A `BacktestReport` plus the script's output: `sdk.log` lines and `print` output."""

    logs: tuple[str, ...] = ()
    printed: str = ""


# --- Inside the sandbox child -------------------------------------------------------------


def _event_config(data: Mapping[str, Any]) -> EventConfig:
    execution = ExecutionConfig(**data["execution"])
    return EventConfig(execution, data.get("maker_fee"), data.get("taker_fee"))


def backtest_job(ctx: JobContext) -> dict[str, Any]:
    """The sandbox job: run the script bar by bar through the event book."""
    arrays = ctx.arrays
    candles = CandleArrays(
        np.asarray(arrays["time"]).astype("datetime64[ns]"),
        *(np.array(arrays[name], dtype=np.float64) for name in CANDLE_FIELDS),
    )
    result = run_events(ScriptStrategy(ctx.main, ctx.params), candles, _event_config(ctx.data))
    return {
        "trades": [list(trade) for trade in result.trades],
        "equity": np.asarray(result.equity, dtype=np.float64),
        "final_equity": float(result.final_equity),
        "halted_at": result.halted_at,
        "fees_paid": float(result.fees_paid),
        "logs": list(result.logs),
        "rejected": list(result.rejected),
    }


# --- In the trusted process ---------------------------------------------------------------


def _as_event_config(config: ExecutionConfig | EventConfig) -> EventConfig:
    return config if isinstance(config, EventConfig) else EventConfig(config)


def _trade(row: list[Any]) -> SimTrade:
    entry, exit_, entry_price, exit_price, size, fee, pnl, reason, side = row
    return SimTrade(
        int(entry),
        None if exit_ is None else int(exit_),
        float(entry_price),
        None if exit_price is None else float(exit_price),
        float(size),
        float(fee),
        float(pnl),
        reason,
        side,
    )


def run_script_backtest(
    source: str,
    params: Mapping[str, Any] | None,
    candles: CandleArrays,
    config: ExecutionConfig | EventConfig,
    limits: SandboxLimits | None = None,
    filename: str = "strategy.py",
) -> ScriptBacktestReport:
    """Backtest `source` (defining `main(sdk, params)`) on `candles` inside the sandbox.

    Raises `ScriptBacktestError` for anything the script does wrong (never runs it here),
    and `SimulationConfigError` for a bad config before any process starts.
    """
    event_config = _as_event_config(config)
    event_config.validate()
    arrays = {"time": candles.time.astype("datetime64[ns]")}
    arrays.update({name: candles.field(name) for name in CANDLE_FIELDS})
    data = {
        "execution": asdict(event_config.execution),
        "maker_fee": event_config.maker_fee,
        "taker_fee": event_config.taker_fee,
    }
    outcome = run_sandboxed(
        JOB,
        source,
        params=dict(params or {}),
        arrays=arrays,
        data=data,
        limits=limits,
        filename=filename,
    )
    if outcome.error is not None:
        raise ScriptBacktestError(outcome.error, outcome.log)
    value = outcome.value
    equity = np.asarray(value["equity"], dtype=np.float64)
    if len(equity) != len(candles):
        raise ScriptBacktestError(
            SandboxError("crash", "the sandbox returned an equity curve of the wrong length"),
            outcome.log,
        )
    trades = [_trade(row) for row in value["trades"]]
    result = EventResult(
        trades,
        equity,
        float(value["final_equity"]),
        value["halted_at"],
        float(value["fees_paid"]),
        logs=list(value["logs"]),
        rejected=list(value["rejected"]),
    )
    drawdown = drawdown_curve(equity)
    metrics = compute_metrics(candles, result, event_config.execution.cash, drawdown)
    return ScriptBacktestReport(
        metrics, candles, equity, drawdown, result, tuple(result.logs), outcome.log
    )
