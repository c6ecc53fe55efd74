"""Parameter optimisation on real candles: grid, random, parallel, heatmap, walk-forward."""

import math
from pathlib import Path

import numpy as np
import pytest

from apps.engine.backtest import StrategySpec, run_backtest
from apps.engine.candles import CandleArrays, read_csv
from apps.engine.optimize import (
    EvaluationContext,
    OptimizationError,
    ParamSpace,
    evaluate_jobs,
    grid_search,
    optimize,
    out_of_sample_run,
    random_search,
    rank_rows,
    search_plan,
    walk_forward,
    walk_forward_plan,
    walk_forward_summary,
    window_bounds,
)
from apps.engine.simulator import ExecutionConfig

DATA = Path(__file__).resolve().parents[2] / "data" / "candles"
CONFIG = ExecutionConfig(fee=0.001)
SMA_SPACE = {"fast": [5, 10, 20], "slow": {"min": 10, "max": 40, "step": 10}}


@pytest.fixture(scope="module")
def candles() -> CandleArrays:
    return read_csv(DATA / "BTC-USDT_1h.csv")


@pytest.fixture(scope="module")
def short(candles) -> CandleArrays:
    return candles.head(8000)


def test_grid_rows_equal_one_backtest_per_combination(short):
    result = grid_search("sma_cross", SMA_SPACE, short, CONFIG, metric="total_return")
    # 3 fast x 4 slow = 12; fast >= slow refused for (10,10), (20,10), (20,20).
    assert len(result.rows) == 9
    assert len(result.skipped) == 3
    assert {(s.params["fast"], s.params["slow"]) for s in result.skipped} == {
        (10, 10),
        (20, 10),
        (20, 20),
    }
    assert all(s.field == "fast" for s in result.skipped)
    for row in result.rows:
        alone = run_backtest(StrategySpec.from_template("sma_cross", row.params), short, CONFIG)
        assert row.metrics == alone.metrics
        assert row.score == alone.metrics.total_return
    scores = [row.score for row in result.rows]
    assert scores == sorted(scores, reverse=True)
    assert result.best is result.rows[0]


def test_parallel_equals_serial_and_reports_progress(short):
    space = {"fast": {"min": 4, "max": 16, "step": 4}, "slow": [20, 30, 50]}
    calls: list[tuple[int, int]] = []
    serial = optimize("sma_cross", space, short, CONFIG, metric="sharpe")
    parallel = optimize(
        "sma_cross",
        space,
        short,
        CONFIG,
        metric="sharpe",
        workers=2,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert parallel.as_dict() == serial.as_dict()
    assert calls[0] == (0, 12)
    assert calls[-1] == (12, 12)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_random_search_is_reproducible_with_a_seed(short):
    space = {
        "period": {"random": "int", "min": 5, "max": 30},
        "oversold": {"random": "uniform", "min": 15, "max": 35},
        "overbought": {"random": "uniform", "min": 60, "max": 85},
    }
    first = random_search("rsi_swing", space, short, CONFIG, samples=6, seed=7)
    again = random_search("rsi_swing", space, short, CONFIG, samples=6, seed=7)
    other = random_search("rsi_swing", space, short, CONFIG, samples=6, seed=8)
    assert first.as_dict() == again.as_dict()
    assert len(first.rows) == 6
    assert {tuple(r.params.values()) for r in first.rows} != {
        tuple(r.params.values()) for r in other.rows
    }
    for row in first.rows:
        assert isinstance(row.params["period"], int) and 5 <= row.params["period"] <= 30
        assert 15 <= row.params["oversold"] < 35


def test_a_discrete_space_samples_distinct_combinations_only():
    space = ParamSpace.parse("sma_cross", {"fast": [5, 10], "slow": [30, 60]})
    drawn = space.sample(50, seed=1)
    assert sorted((p["fast"], p["slow"]) for p in drawn) == [(5, 30), (5, 60), (10, 30), (10, 60)]


def test_heatmap_shape_and_values_match_the_grid_rows(short):
    result = grid_search("sma_cross", SMA_SPACE, short, CONFIG, metric="total_return")
    heat = result.heatmap("fast", "slow")
    assert heat.x_values == [5, 10, 20]
    assert heat.y_values == [10, 20, 30, 40]
    assert len(heat.scores) == 4 and all(len(line) == 3 for line in heat.scores)
    by_params = {(r.params["fast"], r.params["slow"]): r.score for r in result.rows}
    for i, slow in enumerate(heat.y_values):
        for j, fast in enumerate(heat.x_values):
            assert heat.scores[i][j] == by_params.get((fast, slow))
    assert heat.scores[0][1] is None  # fast 10, slow 10 was refused


def test_a_heatmap_over_two_of_three_parameters_keeps_each_cells_best(short):
    space = {"fast": [8, 12], "slow": [26, 40], "signal": [5, 9]}
    result = grid_search("macd", space, short, CONFIG, metric="total_return")
    heat = result.heatmap("fast", "slow")
    for i, slow in enumerate(heat.y_values):
        for j, fast in enumerate(heat.x_values):
            cell = [
                r.score for r in result.rows if (r.params["fast"], r.params["slow"]) == (fast, slow)
            ]
            assert heat.scores[i][j] == max(cell)


@pytest.mark.parametrize(
    ("template", "space", "field"),
    [
        ("sma_cross", {"fats": [3, 4]}, "fats"),
        ("sma_cross", {"fast": [5, 2.5]}, "fast"),
        ("sma_cross", {"slow": [10, 5000]}, "slow"),
        ("sma_cross", {"fast": []}, "fast"),
        ("sma_cross", {"fast": {"min": 20, "max": 5, "step": 1}}, "fast"),
        ("sma_cross", {"fast": {"min": 5, "max": 20, "step": 0}}, "fast"),
        ("sma_cross", {"fast": {"min": 5, "max": 20, "step": 2.5}}, "fast"),
        ("sma_cross", {"fast": {"random": "uniform", "min": 5, "max": 20}}, "fast"),
        ("rsi_swing", {"oversold": {"random": "normal", "min": 5, "max": 20}}, "oversold"),
        ("rsi_swing", {"overbought": {"random": "uniform", "min": 50, "max": 120}}, "overbought"),
        ("bollinger_reversion", {"num_std": "2"}, "num_std"),
        ("bollinger_reversion", {"num_std": {"min": 1}}, "num_std"),
        ("grid", {"levels": [5, 10]}, "strategy"),
        ("smacross", {"fast": [5]}, "strategy"),
    ],
)
def test_invalid_spaces_are_refused_naming_the_parameter(template, space, field):
    with pytest.raises(OptimizationError) as caught:
        ParamSpace.parse(template, space).grid()
    assert caught.value.field == field


def test_bad_search_settings_name_the_setting(short):
    with pytest.raises(OptimizationError) as caught:
        grid_search("sma_cross", SMA_SPACE, short, CONFIG, metric="sharpness")
    assert caught.value.field == "metric"
    with pytest.raises(OptimizationError) as caught:
        grid_search("sma_cross", {"fast": {"random": "int", "min": 2, "max": 9}}, short, CONFIG)
    assert caught.value.field == "fast"
    with pytest.raises(OptimizationError) as caught:
        window_bounds(1000, 800, 300)
    assert caught.value.field == "in_sample"
    with pytest.raises(OptimizationError) as caught:
        window_bounds(1000, 400, 200, step=100)
    assert caught.value.field == "step"


def test_window_bounds_roll_or_anchor():
    assert window_bounds(1000, 400, 200) == [(0, 400, 600), (200, 600, 800), (400, 800, 1000)]
    assert window_bounds(1000, 400, 200, anchored=True) == [
        (0, 400, 600),
        (0, 600, 800),
        (0, 800, 1000),
    ]
    assert window_bounds(1000, 400, 200, step=300) == [(0, 400, 600), (300, 700, 900)]


WF_SPACE = {"fast": [5, 10, 20], "slow": [30, 50, 100]}
WF = {"in_sample": 3000, "out_of_sample": 1500, "metric": "sharpe"}


def _perturbed_after(candles: CandleArrays, cut: int) -> CandleArrays:
    factor = np.ones(len(candles))
    factor[cut:] = np.random.default_rng(3).uniform(0.6, 1.4, len(candles) - cut)
    return CandleArrays(
        candles.time,
        candles.open * factor,
        candles.high * factor,
        candles.low * factor,
        candles.close * factor,
        candles.volume,
    )


def test_walk_forward_never_fits_on_out_of_sample_bars(candles):
    data = candles.head(15000)
    base = walk_forward("sma_cross", WF_SPACE, data, CONFIG, **WF)
    assert len(base.windows) == 8
    cut = base.windows[3].is_end
    changed = walk_forward("sma_cross", WF_SPACE, _perturbed_after(data, cut), CONFIG, **WF)
    for before, after in zip(base.windows, changed.windows, strict=True):
        if before.is_end <= cut:
            assert after.best_params == before.best_params
            assert after.is_score == before.is_score
    # The perturbation is real: the window tested on the changed bars scores differently.
    assert changed.windows[3].oos_score != base.windows[3].oos_score


def test_walk_forward_reports_windows_stitched_equity_and_the_overfitting_rule(candles):
    data = candles.head(15000)
    calls: list[tuple[int, int]] = []
    result = walk_forward(
        "sma_cross",
        WF_SPACE,
        data,
        CONFIG,
        **WF,
        workers=2,
        progress=lambda done, total: calls.append((done, total)),
    )
    serial = walk_forward("sma_cross", WF_SPACE, data, CONFIG, **WF)
    assert result.as_dict() == serial.as_dict()
    total = 8 * 9 + 8  # 8 windows x 9 combinations, then one OOS run per window
    assert calls[-1] == (total, total)
    oos_bars = sum(w.oos_end - w.oos_start for w in result.windows)
    assert len(result.equity) == len(result.equity_time) == oos_bars == 8 * 1500
    assert result.equity[0] == CONFIG.cash
    assert np.all(np.diff(result.equity_time.astype(np.int64)) > 0)
    chained = math.prod(1 + w.oos_metrics.total_return for w in result.windows)
    assert result.equity[-1] == pytest.approx(CONFIG.cash * chained)
    for w in result.windows:
        assert w.oos_metrics.initial_equity == CONFIG.cash
        if w.is_score is not None and w.is_score > 0 and w.oos_score is not None:
            assert w.efficiency == pytest.approx(w.oos_score / w.is_score)
            assert w.overfit == (w.oos_score < 0.5 * w.is_score)
    # On these hours the in-sample winners keep a small part of their Sharpe out of sample.
    assert result.mean_is_score > 0
    assert result.efficiency == pytest.approx(result.mean_oos_score / result.mean_is_score)
    assert result.efficiency < 0.5
    assert result.overfit
    assert "likely overfit" in result.warning
    lenient = walk_forward("sma_cross", WF_SPACE, data, CONFIG, **WF, threshold=0.05)
    assert lenient.efficiency == result.efficiency > 0.05
    assert not lenient.overfit and lenient.warning is None
    # A window whose in-sample fit lost money has no edge to lose: never flagged.
    assert all(not w.overfit for w in result.windows if w.is_score <= 0)


def test_out_of_sample_trades_stay_inside_the_window_with_warm_indicators(candles):
    data = candles.head(6000)
    params = {"fast": 50, "slow": 400}
    full = run_backtest(StrategySpec.from_template("sma_cross", params), data, CONFIG)
    _, warm = out_of_sample_run("sma_cross", params, data, 3000, 6000, 3000, CONFIG)
    _, cold = out_of_sample_run("sma_cross", params, data, 3000, 6000, 0, CONFIG)
    assert len(warm.equity) == len(cold.equity) == 3000
    assert warm.equity[0] == cold.equity[0] == CONFIG.cash
    # Warm: every trade the full run enters inside the window, at the same bars and prices.
    later = [(t.entry_index, t.entry_price) for t in full.result.trades if t.entry_index > 3000]
    assert later
    assert [(t.entry_index + 3000, t.entry_price) for t in warm.trades] == later
    # Cold: the slow average needs 400 bars of the window before any decision.
    assert all(t.entry_index > 400 for t in cold.trades)
    assert [t.entry_index for t in cold.trades] != [t.entry_index for t in warm.trades]


def _in_chunks(context, jobs, size):
    """The platform's fan-out: each share evaluated on its own, then joined by job number."""
    found = {}
    for begin in reversed(range(0, len(jobs), size)):  # any order of completion
        found.update(evaluate_jobs(context, jobs[begin : begin + size]))
    return [found[job.number] for job in jobs]


def test_a_plan_run_in_chunks_ranks_like_optimize(short):
    plan = search_plan("sma_cross", SMA_SPACE, metric="total_return")
    context = EvaluationContext("sma_cross", short, CONFIG)
    metrics = _in_chunks(context, plan.jobs(len(short)), size=4)
    rows = rank_rows(plan.valid, metrics, "total_return")
    whole = grid_search("sma_cross", SMA_SPACE, short, CONFIG, metric="total_return")
    assert rows == whole.rows
    assert plan.skipped == whole.skipped


def test_a_walk_forward_plan_run_in_chunks_equals_walk_forward(candles):
    data = candles.head(9000)
    plan = walk_forward_plan("sma_cross", WF_SPACE, len(data), **WF)
    context = EvaluationContext("sma_cross", data, CONFIG)
    metrics = _in_chunks(context, plan.jobs(), size=7)
    summary = walk_forward_summary(context, plan, metrics)
    assert summary.as_dict() == walk_forward("sma_cross", WF_SPACE, data, CONFIG, **WF).as_dict()
