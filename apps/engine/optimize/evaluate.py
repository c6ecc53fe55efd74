"""What grid, random and walk-forward search share: plans, jobs, evaluation and ranking.

A search is planned first (`search_plan`: the combinations to try, checked against the
template, and those it refuses), then each combination becomes a `Job`: one backtest of one
parameter set on a bar range. `evaluate_jobs` runs jobs in this process and `evaluate`
spreads them over worker processes. Callers that fan the jobs out elsewhere (the platform
runs them as Celery tasks, chunk by chunk) call `evaluate_jobs` on each share and
`rank_rows` on the joined results, and get the same rows as `optimize`.
"""

from __future__ import annotations

import math
import multiprocessing.context
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from apps.engine.backtest import StrategySpec, StrategySpecError, run_backtest
from apps.engine.candles import CandleArrays
from apps.engine.metrics import Metrics
from apps.engine.optimize.space import (
    SCORE_METRICS,
    OptimizationError,
    Params,
    ParamSpace,
    Progress,
)
from apps.engine.simulator import ExecutionConfig

Method = Literal["grid", "random"]


@dataclass(frozen=True)
class EvaluationContext:
    """What every job of one search shares: the template, the candles and the settings."""

    template: str
    candles: CandleArrays
    config: ExecutionConfig


class Job(NamedTuple):
    """One backtest: `params` on bars [start, stop); `number` orders the results."""

    number: int
    params: Params
    start: int
    stop: int


@dataclass(frozen=True)
class Row:
    params: Params
    metrics: Metrics
    score: float | None


@dataclass(frozen=True)
class Skipped:
    params: Params
    field: str | None
    reason: str


# -- planning -----------------------------------------------------------------------------


def check_metric(metric: str) -> None:
    if metric not in SCORE_METRICS:
        raise OptimizationError(
            f"unknown metric {metric!r}; use one of: {', '.join(SCORE_METRICS)}", "metric"
        )


def checked_config(config: ExecutionConfig | None) -> ExecutionConfig:
    config = config or ExecutionConfig()
    config.validate()
    return config


def combinations(space: ParamSpace, method: Method, samples: int, seed: int | None) -> list[Params]:
    if method == "grid":
        return space.grid()
    if method == "random":
        return space.sample(samples, seed)
    raise OptimizationError(f"method must be 'grid' or 'random', got {method!r}", "method")


def resolve_combinations(
    template: str, combos: Sequence[Params]
) -> tuple[list[Params], list[Skipped]]:
    """Full parameter sets the template accepts, and the combinations it refuses."""
    valid: list[Params] = []
    skipped: list[Skipped] = []
    for combo in combos:
        try:
            valid.append(dict(StrategySpec.from_template(template, combo).params))
        except StrategySpecError as exc:
            skipped.append(Skipped(combo, exc.field, str(exc)))
    return valid, skipped


@dataclass(frozen=True)
class SearchPlan:
    """The checked combinations of one search, before anything runs."""

    template: str
    metric: str
    valid: list[Params]
    skipped: list[Skipped]

    def jobs(self, bars: int) -> list[Job]:
        """One job per combination over all `bars` candles, in plan order."""
        return [Job(i, params, 0, bars) for i, params in enumerate(self.valid)]


def search_plan(
    template: str,
    space: Mapping[str, Any] | ParamSpace,
    *,
    metric: str = "sharpe",
    method: Method = "grid",
    samples: int = 50,
    seed: int | None = None,
) -> SearchPlan:
    """Check the metric and the space, and list what to run; raise OptimizationError."""
    check_metric(metric)
    if not isinstance(space, ParamSpace):
        space = ParamSpace.parse(template, space)
    valid, skipped = resolve_combinations(template, combinations(space, method, samples, seed))
    return SearchPlan(template, metric, valid, skipped)


# -- evaluation (serial or in worker processes) ---------------------------------------------


_WORKER: EvaluationContext | None = None


def _init_worker(context: EvaluationContext) -> None:
    global _WORKER
    _WORKER = context


def candle_window(candles: CandleArrays, start: int, stop: int) -> CandleArrays:
    return CandleArrays(
        candles.time[start:stop],
        candles.open[start:stop],
        candles.high[start:stop],
        candles.low[start:stop],
        candles.close[start:stop],
        candles.volume[start:stop],
    )


def evaluate_jobs(context: EvaluationContext, jobs: Sequence[Job]) -> list[tuple[int, Metrics]]:
    """(job number, metrics) of each job, run here one after another."""
    out = []
    for number, params, start, stop in jobs:
        spec = StrategySpec.from_template(context.template, params)
        report = run_backtest(spec, candle_window(context.candles, start, stop), context.config)
        out.append((number, report.metrics))
    return out


def _worker_chunk(jobs: list[Job]) -> list[tuple[int, Metrics]]:
    assert _WORKER is not None, "worker started without its initializer"
    return evaluate_jobs(_WORKER, jobs)


def _chunks(jobs: list[Job], size: int) -> Iterator[list[Job]]:
    for begin in range(0, len(jobs), size):
        yield jobs[begin : begin + size]


def evaluate(
    context: EvaluationContext,
    jobs: list[Job],
    workers: int = 1,
    progress: Progress | None = None,
    mp_context: multiprocessing.context.BaseContext | None = None,
    extra_total: int = 0,
) -> list[Metrics]:
    """Metrics of each job, in job order; `progress(done, total)` after each chunk.

    Each worker process receives the context once, through the pool initializer; a job
    carries only parameters and its bar range.
    """
    total = len(jobs) + extra_total
    results: dict[int, Metrics] = {}
    if progress:
        progress(0, total)
    if workers <= 1 or len(jobs) <= 1:
        for chunk in _chunks(jobs, 8):
            results.update(evaluate_jobs(context, chunk))
            if progress:
                progress(len(results), total)
    else:
        size = max(1, math.ceil(len(jobs) / (workers * 8)))
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=mp_context,
            initializer=_init_worker,
            initargs=(context,),
        ) as pool:
            futures = [pool.submit(_worker_chunk, chunk) for chunk in _chunks(jobs, size)]
            for future in as_completed(futures):
                results.update(future.result())
                if progress:
                    progress(len(results), total)
    return [results[job.number] for job in jobs]


# -- ranking ------------------------------------------------------------------------------


def metric_score(metrics: Metrics, metric: str) -> float | None:
    """The value ranked by; None when the metric is undefined or not finite."""
    value = getattr(metrics, metric)
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def rank_rows(params: Sequence[Params], metrics: Sequence[Metrics], metric: str) -> list[Row]:
    """Rows best first; unscored rows last."""
    rows = [Row(p, m, metric_score(m, metric)) for p, m in zip(params, metrics, strict=True)]
    # Stable: equal scores keep their search order, so serial and parallel runs agree.
    return sorted(rows, key=lambda r: (r.score is None, -(r.score or 0.0)))
