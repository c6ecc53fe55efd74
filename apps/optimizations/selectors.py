"""Reads for optimisations, always scoped to the requesting user (404 for anyone else)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import F, FloatField, OuterRef, QuerySet, Subquery
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.shortcuts import get_object_or_404

from apps.engine.metrics import Metrics
from apps.engine.optimize import Heatmap, OptimizationError, Row, heatmap
from apps.engine.templates import TEMPLATES, ParamSpec
from apps.market.models import Candle, CandleSeries
from apps.optimizations.models import OptimizationRow, OptimizationTask
from apps.strategies.models import StrategyKind, StrategyVersion

# Condition templates: the ones whose parameters the engine searches.
SEARCHABLE_TEMPLATES = [name for name, t in TEMPLATES.items() if t.kind == "conditions"]
# Metrics columns the results table sorts by (?sort=...), besides the score.
ROW_SORTS = (
    "total_return",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "win_rate",
    "profit_factor",
    "trade_count",
    "final_equity",
)


def optimization_create_choices(*, user: Any) -> dict[str, Any]:
    """What the create form offers: the user's template versions and the stored series."""
    versions = (
        StrategyVersion.objects.filter(
            strategy__owner=user,
            strategy__archived_at__isnull=True,
            strategy__kind=StrategyKind.TEMPLATE,
            template__in=SEARCHABLE_TEMPLATES,
        )
        .select_related("strategy")
        .order_by("-strategy__updated_at", "strategy_id", "-number")
    )
    return {"versions": versions, "series": candle_series_with_range()}


def candle_series_with_range() -> QuerySet[CandleSeries]:
    """Every stored series with its `first` and `last` open time (one index probe each)."""
    candles = Candle.objects.filter(series=OuterRef("pk")).values("open_time")
    return CandleSeries.objects.annotate(
        first=Subquery(candles.order_by("open_time")[:1]),
        last=Subquery(candles.order_by("-open_time")[:1]),
    ).order_by("exchange", "symbol", "timeframe")


def optimization_list_for_user(*, user: Any) -> QuerySet[OptimizationTask]:
    return (
        OptimizationTask.objects.filter(owner=user)
        .select_related("strategy_version__strategy")
        .defer("combinations", "skipped")
        .order_by("-created_at", "-id")
    )


def optimization_get_for_user(*, user: Any, optimization_id: int) -> OptimizationTask:
    queryset = OptimizationTask.objects.select_related("strategy_version__strategy", "owner")
    return get_object_or_404(queryset, pk=optimization_id, owner=user)


def optimization_window(*, task: OptimizationTask, wanted: str | None) -> int | None:
    """The walk-forward window whose in-sample rows to show: `wanted` when it names one,
    else the last (the parameters one would trade next); None for grid and random."""
    if not task.is_walk_forward or not task.summary:
        return None
    count = len(task.summary["windows"])
    text = wanted or ""
    return int(text) if text.isdigit() and int(text) < count else count - 1


def optimization_param_specs(*, task: OptimizationTask) -> list[ParamSpec]:
    """The template's specs of the parameters the task varies, in the task's order."""
    specs = {spec.name: spec for spec in TEMPLATES[task.template].params}
    return [specs[name] for name in task.varied if name in specs]


def optimization_rows(
    *,
    task: OptimizationTask,
    window: int | None = None,
    sort: str = "score",
    descending: bool = True,
) -> QuerySet[OptimizationRow]:
    """The task's rows (one walk-forward window's), best score first by default; rows
    without a value for the sort key come last either way."""
    rows = task.rows.filter(window=window)
    if sort in ROW_SORTS:
        rows = rows.annotate(sort_key=Cast(KT(f"metrics__{sort}"), FloatField()))
    else:
        rows = rows.annotate(sort_key=F("score"))
    key = F("sort_key")
    order = key.desc(nulls_last=True) if descending else key.asc(nulls_last=True)
    return rows.order_by(order, "number")


# A page shows a heatmap up to this many values per axis; random draws of floats make
# one column per sample, which no table can show usefully.
HEATMAP_MAX_AXIS = 50


@dataclass(frozen=True)
class HeatmapView:
    """A heatmap laid out for a table: one line per y value, each cell with its colour."""

    heatmap: Heatmap
    lines: list[dict[str, Any]]
    low: float | None
    high: float | None

    @property
    def too_large(self) -> bool:
        heat = self.heatmap
        return max(len(heat.x_values), len(heat.y_values)) > HEATMAP_MAX_AXIS


def _shade(score: float | None, low: float, high: float) -> str:
    """Red (worst) through pale yellow to green (best), as an HSL colour."""
    if score is None:
        return ""
    share = 0.5 if high == low else (score - low) / (high - low)
    return f"hsl({round(share * 120)}, 70%, {round(88 - 30 * abs(share - 0.5))}%)"


def heatmap_axes(*, task: OptimizationTask, x: str | None, y: str | None) -> tuple[str, str]:
    """The heatmap's axes: `x` or the first varied parameter, `y` or the next one that is
    not `x`. Values given are kept as they are, for `optimization_heatmap` to check."""
    varied = task.varied
    x = x or varied[0]
    y = y or next((name for name in varied if name != x), varied[-1])
    return x, y


def optimization_heatmap(
    *, task: OptimizationTask, x: str, y: str, window: int | None = None
) -> HeatmapView:
    """Best score per (x, y) cell over the task's rows; raise OptimizationError naming the
    axis when a parameter is not one the task varies."""
    for name in (x, y):
        if name not in task.varied:
            raise OptimizationError(f"{name!r} is not a parameter this search varies", name)
    if x == y:
        raise OptimizationError("choose two different parameters", "y")
    rows = [
        Row(params, Metrics(**metrics), score)
        for params, metrics, score in task.rows.filter(window=window).values_list(
            "params", "metrics", "score"
        )
    ]
    heat = heatmap(rows, x, y)
    scores = [s for line in heat.scores for s in line if s is not None]
    low, high = (min(scores), max(scores)) if scores else (None, None)
    lines = [
        {
            "y": y_value,
            "cells": [
                {"x": x_value, "score": s, "color": _shade(s, low or 0.0, high or 0.0)}
                for x_value, s in zip(heat.x_values, line, strict=True)
            ],
        }
        for y_value, line in zip(heat.y_values, heat.scores, strict=True)
    ]
    return HeatmapView(heat, lines, low, high)
