"""Combine the pairs of one task into one portfolio: equity summed, metrics of the sum.

Pure numpy (no ORM), so it is tested directly. Pairs may have different timeframes and
gaps: the combined curve lives on the union of their bar times, and each pair's equity is
carried forward between its own bars (its initial capital before its first bar).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from apps.engine.candles import CandleArrays
from apps.engine.metrics import compute_metrics, trade_statistics
from apps.engine.simulator import SimResult


@dataclass(frozen=True)
class PairOutcome:
    """What the aggregate needs from one finished pair."""

    times: np.ndarray  # int64 epoch seconds per bar
    equity: np.ndarray  # float64 per bar
    initial: float
    metrics: dict[str, Any]
    closed_pnl: np.ndarray
    closed_cost: np.ndarray


def combined_equity(outcomes: list[PairOutcome]) -> tuple[np.ndarray, np.ndarray]:
    """(times, equity): the sum of the pairs' equity on the union of their bar times."""
    times = np.unique(np.concatenate([o.times for o in outcomes]))
    total = np.zeros(len(times), dtype=np.float64)
    for outcome in outcomes:
        last = np.searchsorted(outcome.times, times, side="right") - 1
        total += np.where(last >= 0, outcome.equity[np.maximum(last, 0)], outcome.initial)
    return times, total


def aggregate_metrics(
    outcomes: list[PairOutcome], times: np.ndarray, equity: np.ndarray
) -> dict[str, Any]:
    """Metrics of the combined equity; trade figures pool every pair's closed trades."""
    initial = sum(o.initial for o in outcomes)
    moments = times.astype("datetime64[s]").astype("datetime64[ns]")
    # compute_metrics only reads `time` and `close` (for buy-and-hold, replaced below).
    curve = CandleArrays(moments, equity, equity, equity, equity, np.zeros(len(equity)))
    fees = sum(o.metrics["fees_paid"] for o in outcomes)
    result = SimResult(trades=[], equity=equity, final_equity=float(equity[-1]), fees_paid=fees)
    base = compute_metrics(curve, result, initial)
    pnls = np.concatenate([o.closed_pnl for o in outcomes])
    costs = np.concatenate([o.closed_cost for o in outcomes])
    weights = [o.initial / initial for o in outcomes]
    merged = dataclasses.replace(
        base,
        # A buy-and-hold portfolio with the same capital split across the pairs.
        buy_and_hold_return=sum(
            w * o.metrics["buy_and_hold_return"] for w, o in zip(weights, outcomes, strict=True)
        ),
        exposure=sum(w * o.metrics["exposure"] for w, o in zip(weights, outcomes, strict=True)),
        trade_count=sum(o.metrics["trade_count"] for o in outcomes),
        **trade_statistics(pnls, costs),
    )
    metrics = json_metrics(merged.as_dict())
    # Futures costs belong to the pairs (spot pairs report none): the portfolio's are sums.
    for key in ("funding_paid", "liquidations"):
        metrics[key] = sum(o.metrics.get(key, 0) for o in outcomes)
    return metrics


def json_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """Plain Python numbers (numpy scalars would not serialise), NaN/inf as None."""
    clean: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, np.integer):
            value = int(value)
        elif isinstance(value, np.floating | float):
            value = float(value) if np.isfinite(value) else None
        clean[key] = value
    return clean
