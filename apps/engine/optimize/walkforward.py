"""Walk-forward: optimise in-sample, test out-of-sample, flag overfitting."""

from __future__ import annotations

import multiprocessing.context
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from apps.engine.backtest import StrategySpec, iso_utc, signals
from apps.engine.candles import CandleArrays, FloatArray, TimeArray
from apps.engine.metrics import Metrics, compute_metrics, drawdown_curve
from apps.engine.optimize.evaluate import (
    EvaluationContext,
    Job,
    Method,
    SearchPlan,
    candle_window,
    checked_config,
    evaluate,
    metric_score,
    rank_rows,
    search_plan,
)
from apps.engine.optimize.space import DEFAULT_THRESHOLD, OptimizationError, Params, Progress
from apps.engine.simulator import ExecutionConfig, SimResult, simulate

# -- walk-forward -------------------------------------------------------------------------


@dataclass(frozen=True)
class WalkForwardWindow:
    index: int
    is_start: int
    is_end: int
    oos_start: int
    oos_end: int
    is_period: tuple[str, str]
    oos_period: tuple[str, str]
    best_params: Params
    is_score: float | None
    oos_score: float | None
    oos_metrics: Metrics
    efficiency: float | None
    overfit: bool


@dataclass(frozen=True)
class WalkForwardResult:
    template: str
    metric: str
    threshold: float
    windows: list[WalkForwardWindow]
    equity: FloatArray
    equity_time: TimeArray
    mean_is_score: float | None
    mean_oos_score: float | None
    efficiency: float | None
    overfit: bool
    skipped: int = 0

    @property
    def total_return(self) -> float:
        """Return of the stitched out-of-sample equity."""
        return float(self.equity[-1] / self.equity[0] - 1) if len(self.equity) else 0.0

    @property
    def warning(self) -> str | None:
        if not self.overfit or self.efficiency is None:
            return None
        return (
            f"Out-of-sample {self.metric} is {self.efficiency:.0%} of in-sample "
            f"(below {self.threshold:.0%}): the parameters are likely overfit."
        )

    def as_dict(self) -> dict[str, Any]:
        windows = []
        for w in self.windows:
            row = asdict(w)
            row["oos_metrics"] = w.oos_metrics.as_dict()
            windows.append(row)
        return {
            "template": self.template,
            "metric": self.metric,
            "threshold": self.threshold,
            "windows": windows,
            "equity": self.equity.tolist(),
            "equity_time": iso_utc(self.equity_time),
            "mean_is_score": self.mean_is_score,
            "mean_oos_score": self.mean_oos_score,
            "efficiency": self.efficiency,
            "overfit": self.overfit,
            "warning": self.warning,
            "skipped": self.skipped,
            "total_return": self.total_return,
        }


def window_bounds(
    bars: int, in_sample: int, out_of_sample: int, step: int | None = None, anchored: bool = False
) -> list[tuple[int, int, int]]:
    """(is_start, is_end, oos_end) of each full window; OOS is [is_end, oos_end)."""
    step = out_of_sample if step is None else step
    for name, value in (("in_sample", in_sample), ("out_of_sample", out_of_sample)):
        if value < 2:
            raise OptimizationError(f"{name} must be at least 2 bars, got {value}", name)
    if step < out_of_sample:
        raise OptimizationError(
            f"step must be at least out_of_sample ({out_of_sample}) so OOS windows do not "
            f"overlap, got {step}",
            "step",
        )
    bounds = []
    is_end = in_sample
    while is_end + out_of_sample <= bars:
        bounds.append((0 if anchored else is_end - in_sample, is_end, is_end + out_of_sample))
        is_end += step
    if not bounds:
        raise OptimizationError(
            f"{bars} candles are too few for one window of {in_sample} in-sample and "
            f"{out_of_sample} out-of-sample bars",
            "in_sample",
        )
    return bounds


def out_of_sample_run(
    template: str,
    params: Mapping[str, Any],
    candles: CandleArrays,
    start: int,
    stop: int,
    warmup: int,
    config: ExecutionConfig,
) -> tuple[Metrics, SimResult]:
    """Trade bars [start, stop) only, with signals computed from `warmup` bars earlier.

    Trade indices in the result count from `start`.
    """
    first = max(0, start - warmup)
    spec = StrategySpec.from_template(template, params)
    entries, exits = signals(spec, candle_window(candles, first, stop))
    inside = candle_window(candles, start, stop)
    result = simulate(inside, entries[start - first :], exits[start - first :], config)
    drawdown = drawdown_curve(result.equity)
    return compute_metrics(inside, result, config.cash, drawdown), result


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _efficiency(is_score: float | None, oos_score: float | None) -> float | None:
    if is_score is None or oos_score is None or is_score <= 0:
        return None
    return oos_score / is_score


def _window_overfit(is_score: float | None, oos_score: float | None, threshold: float) -> bool:
    if is_score is None or is_score <= 0:
        return False
    return oos_score is None or oos_score < threshold * is_score


@dataclass(frozen=True)
class WalkForwardPlan:
    """The windows and combinations of one walk-forward run, before anything runs."""

    search: SearchPlan
    bounds: list[tuple[int, int, int]]
    warmup: int

    def jobs(self) -> list[Job]:
        """Every combination on every in-sample window, window by window."""
        valid = self.search.valid
        return [
            Job(w * len(valid) + i, params, is_start, is_end)
            for w, (is_start, is_end, _) in enumerate(self.bounds)
            for i, params in enumerate(valid)
        ]


def walk_forward_plan(
    template: str,
    space: Mapping[str, Any],
    bars: int,
    *,
    in_sample: int,
    out_of_sample: int,
    step: int | None = None,
    anchored: bool = False,
    warmup: int | None = None,
    metric: str = "sharpe",
    method: Method = "grid",
    samples: int = 50,
    seed: int | None = None,
) -> WalkForwardPlan:
    """Check every setting against `bars` candles; raise OptimizationError naming it.

    `warmup` defaults to `in_sample` bars.
    """
    if warmup is not None and warmup < 0:
        raise OptimizationError("warmup must not be negative", "warmup")
    warmup = in_sample if warmup is None else warmup
    search = search_plan(template, space, metric=metric, method=method, samples=samples, seed=seed)
    bounds = window_bounds(bars, in_sample, out_of_sample, step, anchored)
    if not search.valid:
        raise OptimizationError("every combination in the space was refused", "space")
    return WalkForwardPlan(search, bounds, warmup)


def _window_result(
    context: EvaluationContext,
    plan: WalkForwardPlan,
    w: int,
    metrics: Sequence[Metrics],
    threshold: float,
    times: list[str],
) -> tuple[WalkForwardWindow, SimResult]:
    is_start, is_end, oos_end = plan.bounds[w]
    valid, metric = plan.search.valid, plan.search.metric
    best = rank_rows(valid, metrics[w * len(valid) : (w + 1) * len(valid)], metric)[0]
    oos_metrics, oos_result = out_of_sample_run(
        context.template, best.params, context.candles, is_end, oos_end, plan.warmup, context.config
    )
    oos_score = metric_score(oos_metrics, metric)
    window = WalkForwardWindow(
        index=w,
        is_start=is_start,
        is_end=is_end,
        oos_start=is_end,
        oos_end=oos_end,
        is_period=(times[is_start], times[is_end - 1]),
        oos_period=(times[is_end], times[oos_end - 1]),
        best_params=best.params,
        is_score=best.score,
        oos_score=oos_score,
        oos_metrics=oos_metrics,
        efficiency=_efficiency(best.score, oos_score),
        overfit=_window_overfit(best.score, oos_score, threshold),
    )
    return window, oos_result


def walk_forward_summary(
    context: EvaluationContext,
    plan: WalkForwardPlan,
    metrics: Sequence[Metrics],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    progress: Progress | None = None,
) -> WalkForwardResult:
    """Pick each window's in-sample winner from `metrics` (in `plan.jobs()` order), run it
    out of sample, and judge the whole run."""
    windows: list[WalkForwardWindow] = []
    curves: list[FloatArray] = []
    carry = 1.0
    times = iso_utc(context.candles.time)
    done = len(metrics)
    for w in range(len(plan.bounds)):
        window, oos_result = _window_result(context, plan, w, metrics, threshold, times)
        windows.append(window)
        curves.append(oos_result.equity * carry)
        carry *= float(oos_result.equity[-1]) / context.config.cash
        if progress:
            progress(done + w + 1, done + len(plan.bounds))
    paired = [w for w in windows if w.is_score is not None and w.oos_score is not None]
    mean_is = _mean([w.is_score for w in paired])
    mean_oos = _mean([w.oos_score for w in paired])
    efficiency = _efficiency(mean_is, mean_oos)
    overfit = mean_is is not None and mean_is > 0 and (efficiency or 0.0) < threshold
    candles = context.candles
    return WalkForwardResult(
        template=context.template,
        metric=plan.search.metric,
        threshold=threshold,
        windows=windows,
        equity=np.concatenate(curves),
        equity_time=np.concatenate([candles.time[w.oos_start : w.oos_end] for w in windows]),
        mean_is_score=mean_is,
        mean_oos_score=mean_oos,
        efficiency=efficiency,
        overfit=overfit,
        skipped=len(plan.search.skipped),
    )


def walk_forward(
    template: str,
    space: Mapping[str, Any],
    candles: CandleArrays,
    config: ExecutionConfig | None = None,
    *,
    in_sample: int,
    out_of_sample: int,
    step: int | None = None,
    anchored: bool = False,
    warmup: int | None = None,
    metric: str = "sharpe",
    method: Method = "grid",
    samples: int = 50,
    seed: int | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    workers: int = 1,
    progress: Progress | None = None,
    mp_context: multiprocessing.context.BaseContext | None = None,
) -> WalkForwardResult:
    """Optimise on each in-sample window, score the winner on the window after it.

    `warmup` defaults to `in_sample` bars. All windows' in-sample runs share one pool.
    """
    config = checked_config(config)
    plan = walk_forward_plan(
        template,
        space,
        len(candles),
        in_sample=in_sample,
        out_of_sample=out_of_sample,
        step=step,
        anchored=anchored,
        warmup=warmup,
        metric=metric,
        method=method,
        samples=samples,
        seed=seed,
    )
    context = EvaluationContext(template, candles, config)
    jobs = plan.jobs()
    metrics = evaluate(context, jobs, workers, progress, mp_context, extra_total=len(plan.bounds))
    return walk_forward_summary(context, plan, metrics, threshold=threshold, progress=progress)
