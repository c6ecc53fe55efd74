"""The portfolio curve: pairs on different bar times are carried forward and summed."""

import numpy as np
import pytest

from apps.backtests.aggregate import PairOutcome, aggregate_metrics, combined_equity

HOUR = 3600


def outcome(times, equity, initial, pnls=(), bh=0.0):
    return PairOutcome(
        times=np.array(times, dtype=np.int64),
        equity=np.array(equity, dtype=np.float64),
        initial=initial,
        metrics={"fees_paid": 1.0, "buy_and_hold_return": bh, "exposure": 0.5, "trade_count": 1},
        closed_pnl=np.array(pnls, dtype=np.float64),
        closed_cost=np.full(len(pnls), 100.0),
    )


def test_pairs_on_different_times_are_carried_forward_and_summed():
    hourly = outcome([0, HOUR, 2 * HOUR, 3 * HOUR], [100, 110, 105, 120], 100)
    # Starts later and has a gap: its initial capital counts before its first bar.
    sparse = outcome([2 * HOUR, 3 * HOUR + 1800], [50, 40], 50)
    times, total = combined_equity([hourly, sparse])
    assert times.tolist() == [0, HOUR, 2 * HOUR, 3 * HOUR, 3 * HOUR + 1800]
    assert total.tolist() == [150, 160, 155, 170, 160]


def test_aggregate_metrics_pool_trades_and_weight_buy_and_hold_by_capital():
    a = outcome([0, HOUR, 2 * HOUR], [100, 120, 130], 100, pnls=[30, -10], bh=0.5)
    b = outcome([0, HOUR, 2 * HOUR], [300, 270, 330], 300, pnls=[30], bh=0.1)
    times, total = combined_equity([a, b])
    metrics = aggregate_metrics([a, b], times, total)
    assert metrics["initial_equity"] == 400 and metrics["final_equity"] == 460
    assert metrics["total_return"] == pytest.approx(0.15)
    assert metrics["buy_and_hold_return"] == pytest.approx(0.25 * 0.5 + 0.75 * 0.1)
    assert metrics["closed_trades"] == 3 and metrics["trade_count"] == 2
    assert metrics["win_rate"] == pytest.approx(2 / 3)
    assert metrics["profit_factor"] == pytest.approx(6.0)
    assert metrics["fees_paid"] == 2.0
    assert metrics["max_drawdown"] == pytest.approx(1 - 390 / 400)


def test_funding_and_liquidations_are_summed_over_pairs_and_zero_for_spot():
    a = outcome([0, HOUR], [100, 90], 100)
    b = outcome([0, HOUR], [100, 95], 100)
    a.metrics.update(funding_paid=1.25, liquidations=1)
    b.metrics.update(funding_paid=-0.5, liquidations=2)
    times, total = combined_equity([a, b])
    metrics = aggregate_metrics([a, b], times, total)
    assert (metrics["funding_paid"], metrics["liquidations"]) == (0.75, 3)
    spot = aggregate_metrics([outcome([0, HOUR], [100, 90], 100)], times, total[:2] / 2)
    assert (spot["funding_paid"], spot["liquidations"]) == (0, 0)
