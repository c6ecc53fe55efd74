"""Grid and random search, evaluated serially or in worker processes; heatmaps."""

from __future__ import annotations

import multiprocessing.context
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from apps.engine.candles import CandleArrays
from apps.engine.optimize.evaluate import (
    EvaluationContext,
    Method,
    Row,
    Skipped,
    checked_config,
    evaluate,
    rank_rows,
    search_plan,
)
from apps.engine.optimize.space import OptimizationError, ParamSpace, Progress
from apps.engine.simulator import ExecutionConfig

# -- search results -----------------------------------------------------------------------


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


def optimize(
    template: str,
    space: Mapping[str, Any] | ParamSpace,
    candles: CandleArrays,
    config: ExecutionConfig | None = None,
    *,
    metric: str = "sharpe",
    method: Method = "grid",
    samples: int = 50,
    seed: int | None = None,
    workers: int = 1,
    progress: Progress | None = None,
    mp_context: multiprocessing.context.BaseContext | None = None,
) -> OptimizationResult:
    """Backtest each combination on `candles`; rows best first by `metric`."""
    plan = search_plan(template, space, metric=metric, method=method, samples=samples, seed=seed)
    config = checked_config(config)
    context = EvaluationContext(template, candles, config)
    metrics = evaluate(context, plan.jobs(len(candles)), workers, progress, mp_context)
    return OptimizationResult(
        template, metric, rank_rows(plan.valid, metrics, metric), plan.skipped
    )


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
