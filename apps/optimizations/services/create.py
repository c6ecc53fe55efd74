"""Create an optimisation: validate everything first, plan it, write it, enqueue its chunks."""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

from django.db import transaction
from django.http import Http404
from django.utils import timezone

from apps.audit.services import audit_record
from apps.backtests.execution import EXECUTION_FIELDS, execution_config
from apps.common.errors import ApplicationError, InputInvalid
from apps.engine.optimize import (
    SCORE_METRICS,
    OptimizationError,
    ParamSpace,
    search_plan,
    walk_forward_plan,
)
from apps.engine.simulator import SimulationConfigError
from apps.engine.templates import TemplateError, template_get
from apps.market.selectors import candle_series_find
from apps.market.services import series_key_clean
from apps.optimizations.models import OptimizationChunk, OptimizationTask
from apps.optimizations.plan import chunk_size_for, full_space
from apps.strategies.models import StrategyKind
from apps.strategies.selectors import strategy_version_get_for_user

# Combinations one search may try (grid size, or random samples), and backtests one
# walk-forward may run (combinations x windows): a few seconds to a minute of work.
MAX_COMBINATIONS = 2_000
MAX_BACKTESTS = 20_000
CONFIG_FIELD_NAMES = {"cash": "initial_capital", "fee": "taker_fee"}
Problems = list[tuple[str, str]]


class OptimizationInvalid(InputInvalid):
    """Input refused before anything was written; `problems` lists (field path, message)."""


@dataclass(frozen=True)
class OptimizationInput:
    """What a person asks for. `space` maps each parameter to vary to a list of values,
    {min, max, step}, or (random search) {random: int|uniform, min, max}."""

    strategy_version_id: int
    exchange: str
    symbol: str
    timeframe: str
    start: datetime
    end: datetime
    space: dict[str, Any]
    method: str = OptimizationTask.Method.GRID
    metric: str = "sharpe"
    samples: int | None = None
    seed: int | None = None
    in_sample: int | None = None
    out_of_sample: int | None = None
    step: int | None = None
    anchored: bool = False
    overfit_threshold: Decimal = Decimal("0.5")
    initial_capital: Decimal = Decimal(10_000)
    taker_fee: Decimal = Decimal("0.001")
    slippage: Decimal = Decimal(0)
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    trailing_stop: Decimal | None = None
    sizing: str = "all_in"
    size_value: Decimal = Decimal(1)
    max_trades_per_day: int | None = None
    max_drawdown_stop: Decimal | None = None


@dataclass
class _Checked:
    """Inputs that passed validation, normalised, with the plan they make."""

    exchange: str = ""
    symbol: str = ""
    timeframe: str = ""
    version: Any = None
    candle_count: int = 0
    combinations: list[dict[str, float]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    job_count: int = 0
    seed: int | None = None


def _naive(moment: datetime | None) -> bool:
    return moment is None or timezone.is_naive(moment)


def _settings_problems(data: OptimizationInput) -> Problems:
    problems: Problems = []
    if data.method not in OptimizationTask.Method.values:
        problems.append(("method", f"choose one of {', '.join(OptimizationTask.Method.values)}"))
    if data.metric not in SCORE_METRICS:
        problems.append(("metric", f"choose one of {', '.join(SCORE_METRICS)}"))
    if _naive(data.start) or _naive(data.end):
        problems.append(("start", "give the start and end as UTC date-times"))
    elif data.end <= data.start:
        problems.append(("end", "must be after the start"))
    if not isinstance(data.space, dict) or not data.space:
        problems.append(("space", "choose at least one parameter to vary"))
    if not Decimal(0) < data.overfit_threshold <= Decimal(1):
        problems.append(("overfit_threshold", "must be a fraction above 0 and at most 1"))
    try:
        execution_config(data).validate()
    except SimulationConfigError as exc:
        name = str(exc).split(" ", 1)[0]
        problems.append((CONFIG_FIELD_NAMES.get(name, name), str(exc)))
    return problems


def _method_problems(data: OptimizationInput) -> Problems:
    problems: Problems = []
    samples_ok = data.samples is not None and 1 <= data.samples <= MAX_COMBINATIONS
    if data.method == OptimizationTask.Method.RANDOM and not samples_ok:
        problems.append(("samples", f"random search needs 1 to {MAX_COMBINATIONS} samples"))
    if data.method == OptimizationTask.Method.WALK_FORWARD:
        for name in ("in_sample", "out_of_sample"):
            if getattr(data, name) is None:
                problems.append((name, "walk-forward needs the window length in bars"))
    return problems


def _version_problems(owner: Any, data: OptimizationInput, checked: _Checked) -> Problems:
    try:
        version = strategy_version_get_for_user(user=owner, version_id=data.strategy_version_id)
    except Http404:
        return [("strategy_version", f"strategy version {data.strategy_version_id} not found")]
    refusal = _version_refusal(version)
    if refusal:
        return [("strategy_version", f"{version} cannot be optimised: {refusal}")]
    checked.version = version
    return []


def _version_refusal(version: Any) -> str:
    if version.kind == StrategyKind.SCRIPT:
        return "a script's parameters have no declared ranges; optimise a template version"
    if version.kind == StrategyKind.RECORDED:
        return "recorded alerts have no parameters to search; backtest them instead"
    if version.kind != StrategyKind.TEMPLATE:
        return "a condition strategy's parameters have no declared ranges; use a template"
    try:
        template = template_get(version.template)
    except TemplateError as exc:
        return str(exc)
    if template.kind != "conditions":
        return f"the {template.title} template runs on the event path, which is not searched yet"
    if (version.entry, version.exit) != (template.entry, template.exit):
        # The search builds specs from the template; an older snapshot would not match.
        return "it was saved with an older form of its template; save a new version first"
    return ""


def _series_problems(data: OptimizationInput, checked: _Checked) -> Problems:
    try:
        exchange, symbol, timeframe = series_key_clean(
            exchange=data.exchange, symbol=data.symbol, timeframe=data.timeframe
        )
    except ApplicationError as exc:
        return [(exc.field or "symbol", exc.message)]
    series = candle_series_find(exchange=exchange, symbol=symbol, timeframe=timeframe.code)
    count = (
        0
        if series is None
        else series.candles.filter(open_time__gte=data.start, open_time__lt=data.end).count()
    )
    if count < 2:
        return [
            (
                "symbol",
                f"no candles for {symbol} {timeframe.code} on {exchange} between "
                f"{data.start:%Y-%m-%d %H:%M} and {data.end:%Y-%m-%d %H:%M} UTC; "
                "import them on the Market data page first",
            )
        ]
    checked.exchange, checked.symbol, checked.timeframe = exchange, symbol, timeframe.code
    checked.candle_count = count
    return []


def _space_field(name: str | None, varied: dict[str, Any]) -> str:
    if name in varied:
        return f"space.{name}"
    if name == "strategy":
        return "strategy_version"
    return name or "space"


def _grid_size(template: str, space: dict[str, Any]) -> int:
    parsed = ParamSpace.parse(template, space)
    return math.prod(len(d.values) or 1 for d in parsed.dimensions)


def _plan_problems(data: OptimizationInput, checked: _Checked) -> Problems:
    """Plan the search with the engine; its errors name a parameter or a setting."""
    template, version = checked.version.template, checked.version
    space = full_space(version_params=version.params, varied=data.space)
    grid_like = data.method != OptimizationTask.Method.RANDOM
    try:
        if grid_like and (size := _grid_size(template, space)) > MAX_COMBINATIONS:
            return [
                (
                    "space",
                    f"the ranges make {size:,} combinations, more than {MAX_COMBINATIONS:,}; "
                    "use larger steps or narrower ranges",
                )
            ]
        if data.method == OptimizationTask.Method.WALK_FORWARD:
            assert data.in_sample is not None and data.out_of_sample is not None
            walk = walk_forward_plan(
                template,
                space,
                checked.candle_count,
                in_sample=data.in_sample,
                out_of_sample=data.out_of_sample,
                step=data.step,
                anchored=data.anchored,
                metric=data.metric,
            )
            plan, jobs = walk.search, len(walk.jobs())
        else:
            plan = search_plan(
                template,
                space,
                metric=data.metric,
                method="grid" if grid_like else "random",
                samples=data.samples or 1,
                seed=checked.seed,
            )
            jobs = len(plan.valid)
    except OptimizationError as exc:
        return [(_space_field(exc.field, data.space), str(exc))]
    if not plan.valid:
        reason = plan.skipped[0].reason if plan.skipped else "nothing to try"
        return [("space", f"the template refuses every combination: {reason}")]
    if jobs > MAX_BACKTESTS:
        return [
            (
                "space",
                f"{len(plan.valid):,} combinations over the windows make {jobs:,} backtests, "
                f"more than {MAX_BACKTESTS:,}; narrow the ranges or use longer windows",
            )
        ]
    checked.combinations = plan.valid
    checked.skipped = [
        {"params": s.params, "field": s.field, "reason": s.reason} for s in plan.skipped
    ]
    checked.job_count = jobs
    return []


def _validate(owner: Any, data: OptimizationInput) -> _Checked:
    """Everything is checked before anything is written; raise OptimizationInvalid."""
    # An unseeded random search gets a seed all the same, so it can be repeated exactly.
    seed = secrets.randbelow(2**31) if data.seed is None else data.seed
    checked = _Checked(seed=seed if data.method == OptimizationTask.Method.RANDOM else None)
    problems = _settings_problems(data) + _method_problems(data)
    problems += _version_problems(owner, data, checked)
    if not any(path in ("start", "end") for path, _ in problems):
        problems += _series_problems(data, checked)
    if not problems:
        problems += _plan_problems(data, checked)
    if problems:
        raise OptimizationInvalid(problems)
    return checked


@transaction.atomic(durable=True)
def optimization_task_create(*, owner: Any, data: OptimizationInput) -> OptimizationTask:
    """Validate every input, then write the task, its chunks and the audit event, and
    enqueue the chunks after commit. Raise OptimizationInvalid (naming each field) and
    write nothing when anything is wrong."""
    checked = _validate(owner, data)
    size = chunk_size_for(jobs=checked.job_count, bars=checked.candle_count)
    task = OptimizationTask.objects.create(
        owner=owner,
        strategy_version=checked.version,
        exchange=checked.exchange,
        symbol=checked.symbol,
        timeframe=checked.timeframe,
        start=data.start,
        end=data.end,
        **{name: getattr(data, name) for name in EXECUTION_FIELDS},
        method=data.method,
        space=data.space,
        metric=data.metric,
        samples=data.samples if data.method == OptimizationTask.Method.RANDOM else None,
        seed=checked.seed,
        in_sample=data.in_sample,
        out_of_sample=data.out_of_sample,
        step=data.step,
        anchored=data.anchored,
        overfit_threshold=data.overfit_threshold,
        combinations=checked.combinations,
        skipped=checked.skipped,
        candle_count=checked.candle_count,
        job_count=checked.job_count,
        chunk_size=size,
        chunk_count=math.ceil(checked.job_count / size),
    )
    OptimizationChunk.objects.bulk_create(
        [OptimizationChunk(task=task, number=n) for n in range(task.chunk_count)]
    )
    audit_record(
        event_type="optimizations.task_created",
        actor=owner,
        owner=owner,
        target=task,
        data={
            "version": checked.version.pk,
            "series": f"{task.exchange} {task.symbol} {task.timeframe}",
            "method": task.method,
            "metric": task.metric,
            "space": task.space,
            "backtests": task.job_count,
        },
    )
    transaction.on_commit(partial(_enqueue, task.pk, task.chunk_count))
    return task


def _enqueue(task_id: int, chunk_count: int) -> None:
    from apps.optimizations.tasks import optimization_chunk_run as optimization_chunk_run_task

    for chunk in range(chunk_count):
        optimization_chunk_run_task.apply_async(args=[task_id, chunk])
