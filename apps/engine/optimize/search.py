"""Grid and random search, evaluated serially or in worker processes."""

from __future__ import annotations

import math
import multiprocessing.context
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from typing import Any, Literal

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

# -- evaluation (serial or in worker processes) ---------------------------------------------


@dataclass(frozen=True)
class _Context:
    template: str
    candles: CandleArrays
    config: ExecutionConfig


# (job index, params, first bar, end bar)
_Job = tuple[int, Params, int, int]

_WORKER: _Context | None = None


def _init_worker(context: _Context) -> None:
    global _WORKER
    _WORKER = context


def _window(candles: CandleArrays, start: int, stop: int) -> CandleArrays:
    return CandleArrays(
        candles.time[start:stop],
        candles.open[start:stop],
        candles.high[start:stop],
        candles.low[start:stop],
        candles.close[start:stop],
        candles.volume[start:stop],
    )


def _evaluate_jobs(context: _Context, jobs: Sequence[_Job]) -> list[tuple[int, Metrics]]:
    out = []
    for index, params, start, stop in jobs:
        spec = StrategySpec.from_template(context.template, params)
        report = run_backtest(spec, _window(context.candles, start, stop), context.config)
        out.append((index, report.metrics))
    return out


def _worker_chunk(jobs: list[_Job]) -> list[tuple[int, Metrics]]:
    assert _WORKER is not None, "worker started without its initializer"
    return _evaluate_jobs(_WORKER, jobs)


def _chunks(jobs: list[_Job], size: int) -> Iterator[list[_Job]]:
    for begin in range(0, len(jobs), size):
        yield jobs[begin : begin + size]


def _evaluate(
    context: _Context,
    jobs: list[_Job],
    workers: int,
    progress: Progress | None,
    mp_context: multiprocessing.context.BaseContext | None,
    extra_total: int = 0,
) -> list[Metrics]:
    """Metrics of each job, in job order; `progress(done, total)` after each chunk."""
    total = len(jobs) + extra_total
    results: dict[int, Metrics] = {}
    if progress:
        progress(0, total)
    if workers <= 1 or len(jobs) <= 1:
        for chunk in _chunks(jobs, 8):
            results.update(_evaluate_jobs(context, chunk))
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
    return [results[index] for index, *_ in jobs]


# -- search results -----------------------------------------------------------------------


def _score(metrics: Metrics, metric: str) -> float | None:
    value = getattr(metrics, metric)
    if value is None or not math.isfinite(value):
        return None
    return float(value)


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


@dataclass(frozen=True)
class Heatmap:
    """Best score per cell: `scores[i][j]` is for y_values[i] and x_values[j]."""

    x: str
    y: str
    x_values: list[float]
    y_values: list[float]
    scores: list[list[float | None]]


def _better(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def heatmap(rows: Sequence[Row], x: str, y: str) -> Heatmap:
    """Scores over two parameters; other parameters varying, a cell keeps its best score.

    Cells no row reached (skipped combinations) and cells whose runs had no score are None.
    """
    for name in (x, y):
        if not rows or name not in rows[0].params:
            raise OptimizationError(f"no results vary parameter {name!r}", name)
    x_values = sorted({row.params[x] for row in rows})
    y_values = sorted({row.params[y] for row in rows})
    column = {value: j for j, value in enumerate(x_values)}
    line = {value: i for i, value in enumerate(y_values)}
    scores: list[list[float | None]] = [[None] * len(x_values) for _ in y_values]
    for row in rows:
        i, j = line[row.params[y]], column[row.params[x]]
        scores[i][j] = _better(scores[i][j], row.score)
    return Heatmap(x, y, x_values, y_values, scores)


@dataclass(frozen=True)
class OptimizationResult:
    template: str
    metric: str
    rows: list[Row]
    skipped: list[Skipped]

    @property
    def best(self) -> Row | None:
        return self.rows[0] if self.rows else None

    def heatmap(self, x: str, y: str) -> Heatmap:
        return heatmap(self.rows, x, y)

    def as_dict(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "metric": self.metric,
            "rows": [
                {"params": r.params, "score": r.score, "metrics": r.metrics.as_dict()}
                for r in self.rows
            ],
            "skipped": [asdict(s) for s in self.skipped],
        }


def _sorted_rows(params: Sequence[Params], metrics: Sequence[Metrics], metric: str) -> list[Row]:
    rows = [Row(p, m, _score(m, metric)) for p, m in zip(params, metrics, strict=True)]
    # Stable: equal scores keep their search order, so serial and parallel runs agree.
    return sorted(rows, key=lambda r: (r.score is None, -(r.score or 0.0)))


def _check_metric(metric: str) -> None:
    if metric not in SCORE_METRICS:
        raise OptimizationError(
            f"unknown metric {metric!r}; use one of: {', '.join(SCORE_METRICS)}", "metric"
        )


def _resolve(template: str, combos: Sequence[Params]) -> tuple[list[Params], list[Skipped]]:
    """Full parameter sets the template accepts, and the combinations it refuses."""
    valid: list[Params] = []
    skipped: list[Skipped] = []
    for combo in combos:
        try:
            valid.append(dict(StrategySpec.from_template(template, combo).params))
        except StrategySpecError as exc:
            skipped.append(Skipped(combo, exc.field, str(exc)))
    return valid, skipped


def _combos(
    space: ParamSpace, method: Literal["grid", "random"], samples: int, seed: int | None
) -> list[Params]:
    if method == "grid":
        return space.grid()
    if method == "random":
        return space.sample(samples, seed)
    raise OptimizationError(f"method must be 'grid' or 'random', got {method!r}", "method")


def _config(config: ExecutionConfig | None) -> ExecutionConfig:
    config = config or ExecutionConfig()
    config.validate()
    return config


def optimize(
    template: str,
    space: Mapping[str, Any] | ParamSpace,
    candles: CandleArrays,
    config: ExecutionConfig | None = None,
    *,
    metric: str = "sharpe",
    method: Literal["grid", "random"] = "grid",
    samples: int = 50,
    seed: int | None = None,
    workers: int = 1,
    progress: Progress | None = None,
    mp_context: multiprocessing.context.BaseContext | None = None,
) -> OptimizationResult:
    """Backtest each combination on `candles`; rows best first by `metric`."""
    _check_metric(metric)
    config = _config(config)
    if not isinstance(space, ParamSpace):
        space = ParamSpace.parse(template, space)
    valid, skipped = _resolve(template, _combos(space, method, samples, seed))
    jobs: list[_Job] = [(i, p, 0, len(candles)) for i, p in enumerate(valid)]
    context = _Context(template, candles, config)
    metrics = _evaluate(context, jobs, workers, progress, mp_context)
    return OptimizationResult(template, metric, _sorted_rows(valid, metrics, metric), skipped)


def grid_search(
    template: str,
    space: Mapping[str, Any],
    candles: CandleArrays,
    config: ExecutionConfig | None = None,
    **options: Any,
) -> OptimizationResult:
    return optimize(template, space, candles, config, method="grid", **options)


def random_search(
    template: str,
    space: Mapping[str, Any],
    candles: CandleArrays,
    config: ExecutionConfig | None = None,
    *,
    samples: int,
    seed: int | None,
    **options: Any,
) -> OptimizationResult:
    return optimize(
        template, space, candles, config, method="random", samples=samples, seed=seed, **options
    )
