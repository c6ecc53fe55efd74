"""One bot tick of a Python script strategy, inside the sandbox (the backtest's path).

- `step_job(ctx)` runs INSIDE the locked-down sandbox child, as `backtest_job` does for a
  script backtest: it rebuilds the candle window and the `StrategyState` from plain data,
  calls `decide.step` with a `ScriptSpec` around the script's `main`, and returns the
  intents, the new `sdk.state` and the `sdk.log` lines as plain data.
- `run_script_step(...)` runs in the trusted process and turns the reply back into a
  `Decision`; a script error or a breached limit raises `ScriptBacktestError` (kind, line)
  with what the script printed, so the caller can log it and fail that one bot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any

import numpy as np

from apps.engine.candles import CandleArrays
from apps.engine.clock import FixedClock
from apps.engine.decide import Balance, Decision, Position, ScriptSpec, StrategyState, step
from apps.engine.plain import from_plain
from apps.engine.sandbox import JobContext, SandboxLimits, run_sandboxed
from apps.engine.script_backtest import CANDLE_FIELDS, ScriptBacktestError
from apps.engine.strategies.base import OrderIntent

JOB = "apps.engine.script_step:step_job"


def step_job(ctx: JobContext) -> dict[str, Any]:
    """The sandbox job: one `step` of the script on the window that just closed."""
    arrays, data = ctx.arrays, ctx.data
    candles = CandleArrays(
        np.asarray(arrays["time"]).astype("datetime64[ns]"),
        *(np.array(arrays[name], dtype=np.float64) for name in CANDLE_FIELDS),
    )
    state = StrategyState(
        ScriptSpec(ctx.main, ctx.params),
        Position(*data["position"]),
        Balance(*data["balance"]),
        memory=data["memory"],
    )
    decision = step(state, candles, FixedClock(datetime.fromisoformat(data["now"])))
    return {
        "intents": [asdict(intent) for intent in decision.intents],
        "memory": dict(decision.memory),
        "logs": list(decision.logs),
    }


def run_script_step(
    source: str,
    params: Mapping[str, Any],
    candles: CandleArrays,
    state: StrategyState,
    now: datetime,
    limits: SandboxLimits | None = None,
) -> tuple[Decision, str]:
    """The script's decision on `candles` (the last one just closed) and its printed text.

    `state.strategy` is ignored: the script is `source`, run in the sandbox child.
    """
    arrays = {"time": candles.time.astype("datetime64[ns]")}
    arrays.update({name: candles.field(name) for name in CANDLE_FIELDS})
    data = {
        "position": [state.position.size, state.position.avg_price],
        "balance": [state.balance.cash, state.balance.equity],
        "memory": dict(state.memory),
        "now": now.isoformat(),
    }
    outcome = run_sandboxed(
        JOB, source, params=dict(params), arrays=arrays, data=data, limits=limits
    )
    if outcome.error is not None:
        raise ScriptBacktestError(outcome.error, outcome.log)
    value = outcome.value
    intents = tuple(from_plain(OrderIntent, raw) for raw in value["intents"])
    return Decision(intents, value["memory"], tuple(value["logs"])), outcome.log
