"""Parameter optimisation for template strategies: grid, random and walk-forward search.

A parameter space maps template parameter names to one of:

- a list of values, or ``{"values": [...]}``;
- a range, ``{"min": 5, "max": 50, "step": 5}`` (both ends included);
- a random draw, ``{"random": "uniform" | "int", "min": .., "max": ..}`` (random search only).

Every value and bound is checked against the template's `ParamSpec` (type and min/max), and
errors name the parameter. Parameters left out keep the template's defaults. A combination
the template refuses as a whole (``fast >= slow``) is skipped and counted, not scored.

Scores are Metrics fields where higher is better (`SCORE_METRICS`). A run whose metric is
undefined (no trades, so no Sharpe) has score None and sorts after every scored row.

Parallel runs use a `ProcessPoolExecutor`: each worker receives the candles, execution
config and template once, through the pool initializer; a job carries only parameters and
the bar range to test. Results come back in job order, so a parallel run equals a serial one.

Walk-forward and the overfitting rule
-------------------------------------
Windows advance by `step` bars. Each window optimises on its in-sample (IS) bars
``[is_start, is_end)`` (rolling: the last `in_sample` bars; anchored: from bar 0) and then
runs the best parameters on the following out-of-sample (OOS) bars ``[is_end, oos_end)``.
The OOS run computes its signals over `warmup` bars before the window as well, so the
indicators are ready, but it simulates (and so trades and accrues equity) only inside the
window. The stitched OOS equity chains the windows: each starts with the previous window's
final equity.

Efficiency is OOS score / IS score. A window is flagged when its IS score is positive and its
OOS score is missing or below ``threshold * IS`` (default 0.5). The whole run is flagged
overfit when the mean IS score is positive and mean OOS / mean IS is below the threshold
(means over windows where both scores exist). With a non-positive IS score there is no edge
to lose, so nothing is flagged. Compare a length-independent metric (sharpe, sortino,
calmar, annualized_return): IS windows are usually longer than OOS windows, so total_return
of the two is not like for like.
"""

from __future__ import annotations

import math
import multiprocessing.context
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from apps.engine.backtest import StrategySpec, StrategySpecError, iso_utc, run_backtest, signals
from apps.engine.candles import CandleArrays, FloatArray, TimeArray
from apps.engine.metrics import Metrics, compute_metrics, drawdown_curve
from apps.engine.simulator import ExecutionConfig, SimResult, simulate
from apps.engine.templates import ParamSpec, TemplateError, template_get

Progress = Callable[[int, int], None]
Params = dict[str, float]

SCORE_METRICS = (
    "sharpe",
    "sortino",
    "calmar",
    "total_return",
    "annualized_return",
    "profit_factor",
    "win_rate",
    "final_equity",
    "average_trade",
    "average_trade_return",
)
MAX_COMBINATIONS = 100_000
DEFAULT_THRESHOLD = 0.5


class OptimizationError(ValueError):
    """The search cannot run as given; `field` names the parameter or setting at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# -- parameter spaces ---------------------------------------------------------------------


@dataclass(frozen=True)
class Dimension:
    """One parameter's search range: fixed values, or a random draw between bounds."""

    name: str
    values: tuple[float, ...] = ()
    random: Literal["uniform", "int"] | None = None
    low: float = 0.0
    high: float = 0.0

    def draw(self, rng: np.random.Generator) -> float:
        if self.random == "uniform":
            return float(rng.uniform(self.low, self.high))
        if self.random == "int":
            return int(rng.integers(int(self.low), int(self.high) + 1))
        return self.values[int(rng.integers(len(self.values)))]


def _number(name: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise OptimizationError(f"{name}: {key} must be a finite number, got {value!r}", name)
    return value


def _coerce(spec: ParamSpec, value: Any) -> float:
    try:
        return spec.coerce(value)
    except TemplateError as exc:
        raise OptimizationError(str(exc), spec.name) from exc


def _range_values(spec: ParamSpec, entry: Mapping[str, Any]) -> tuple[float, ...]:
    name = spec.name
    low, high = _number(name, "min", entry["min"]), _number(name, "max", entry["max"])
    step = _number(name, "step", entry.get("step", 1))
    if step <= 0:
        raise OptimizationError(f"{name}: step must be positive, got {step}", name)
    if low > high:
        raise OptimizationError(f"{name}: min {low} is above max {high}", name)
    count = math.floor((high - low) / step + 1e-9) + 1
    if count > MAX_COMBINATIONS:
        raise OptimizationError(f"{name}: the range has {count} values, too many", name)
    return tuple(_coerce(spec, round(low + i * step, 12)) for i in range(count))


def _random_dimension(spec: ParamSpec, entry: Mapping[str, Any]) -> Dimension:
    name, kind = spec.name, entry["random"]
    if kind not in ("uniform", "int"):
        raise OptimizationError(f"{name}: random must be 'uniform' or 'int', got {kind!r}", name)
    if kind == "uniform" and spec.type == "int":
        raise OptimizationError(f"{name} is a whole number; draw it with random 'int'", name)
    if "min" not in entry or "max" not in entry:
        raise OptimizationError(f"{name}: a random draw needs min and max", name)
    low, high = _coerce(spec, entry["min"]), _coerce(spec, entry["max"])
    if kind == "int" and not (float(low).is_integer() and float(high).is_integer()):
        raise OptimizationError(f"{name}: random 'int' bounds must be whole numbers", name)
    if low > high:
        raise OptimizationError(f"{name}: min {low} is above max {high}", name)
    return Dimension(name, random=kind, low=low, high=high)


def _dimension(spec: ParamSpec, entry: Any) -> Dimension:
    name = spec.name
    if isinstance(entry, Mapping) and "values" in entry:
        entry = entry["values"]
    if isinstance(entry, (list, tuple)):
        if not entry:
            raise OptimizationError(f"{name}: the list of values is empty", name)
        return Dimension(name, values=tuple(_coerce(spec, value) for value in entry))
    if isinstance(entry, Mapping) and "random" in entry:
        return _random_dimension(spec, entry)
    if isinstance(entry, Mapping) and "min" in entry and "max" in entry:
        return Dimension(name, values=_range_values(spec, entry))
    raise OptimizationError(
        f"{name}: give a list of values, {{min, max, step}}, or {{random, min, max}}", name
    )


@dataclass(frozen=True)
class ParamSpace:
    template: str
    dimensions: tuple[Dimension, ...]

    @classmethod
    def parse(cls, template: str, space: Mapping[str, Any]) -> ParamSpace:
        try:
            found = template_get(template)
        except TemplateError as exc:
            raise OptimizationError(str(exc), exc.field) from exc
        if found.kind != "conditions":
            raise OptimizationError(
                f"template {template!r} runs on the event path and cannot be optimised here",
                "strategy",
            )
        known = {p.name: p for p in found.params}
        if not space:
            raise OptimizationError("the parameter space is empty", "space")
        for name in space:
            if name not in known:
                raise OptimizationError(
                    f"unknown parameter {name!r} for {template}; "
                    f"expected one of: {', '.join(known)}",
                    name,
                )
        return cls(template, tuple(_dimension(known[n], e) for n, e in space.items()))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dimensions)

    def grid(self) -> list[Params]:
        """Every combination, the first parameter varying slowest."""
        for dim in self.dimensions:
            if dim.random is not None:
                raise OptimizationError(
                    f"{dim.name}: a random draw cannot be gridded; give values or a step",
                    dim.name,
                )
        total = math.prod(len(d.values) for d in self.dimensions)
        if total > MAX_COMBINATIONS:
            raise OptimizationError(
                f"the grid has {total} combinations, more than {MAX_COMBINATIONS}", "space"
            )
        combos: list[Params] = [{}]
        for dim in self.dimensions:
            combos = [{**combo, dim.name: value} for combo in combos for value in dim.values]
        return combos

    def sample(self, count: int, seed: int | None) -> list[Params]:
        """Up to `count` distinct random combinations; the same seed gives the same list."""
        if count < 1:
            raise OptimizationError("samples must be at least 1", "samples")
        rng = np.random.default_rng(seed)
        seen: set[tuple[float, ...]] = set()
        combos: list[Params] = []
        for _ in range(count * 20):
            combo = {dim.name: dim.draw(rng) for dim in self.dimensions}
            key = tuple(combo.values())
            if key not in seen:
                seen.add(key)
                combos.append(combo)
                if len(combos) == count:
                    break
        return combos


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
    entries, exits = signals(spec, _window(candles, first, stop))
    inside = _window(candles, start, stop)
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
    method: Literal["grid", "random"] = "grid",
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
    _check_metric(metric)
    config = _config(config)
    if warmup is not None and warmup < 0:
        raise OptimizationError("warmup must not be negative", "warmup")
    warmup = in_sample if warmup is None else warmup
    bounds = window_bounds(len(candles), in_sample, out_of_sample, step, anchored)
    parsed = ParamSpace.parse(template, space)
    valid, skipped = _resolve(template, _combos(parsed, method, samples, seed))
    if not valid:
        raise OptimizationError("every combination in the space was refused", "space")
    jobs: list[_Job] = [
        (w * len(valid) + i, p, is_start, is_end)
        for w, (is_start, is_end, _) in enumerate(bounds)
        for i, p in enumerate(valid)
    ]
    context = _Context(template, candles, config)
    metrics = _evaluate(context, jobs, workers, progress, mp_context, extra_total=len(bounds))
    windows: list[WalkForwardWindow] = []
    curves: list[FloatArray] = []
    carry = 1.0
    times = iso_utc(candles.time)
    for w, (is_start, is_end, oos_end) in enumerate(bounds):
        best = _sorted_rows(valid, metrics[w * len(valid) : (w + 1) * len(valid)], metric)[0]
        oos_metrics, oos_result = out_of_sample_run(
            template, best.params, candles, is_end, oos_end, warmup, config
        )
        equity = oos_result.equity
        curves.append(equity * carry)
        carry *= float(equity[-1]) / config.cash
        oos_score = _score(oos_metrics, metric)
        windows.append(
            WalkForwardWindow(
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
        )
        if progress:
            progress(len(jobs) + w + 1, len(jobs) + len(bounds))
    paired = [w for w in windows if w.is_score is not None and w.oos_score is not None]
    mean_is = _mean([w.is_score for w in paired])
    mean_oos = _mean([w.oos_score for w in paired])
    efficiency = _efficiency(mean_is, mean_oos)
    overfit = mean_is is not None and mean_is > 0 and (efficiency or 0.0) < threshold
    equity = np.concatenate(curves)
    equity_time = np.concatenate([candles.time[w.oos_start : w.oos_end] for w in windows])
    return WalkForwardResult(
        template=template,
        metric=metric,
        threshold=threshold,
        windows=windows,
        equity=equity,
        equity_time=equity_time,
        mean_is_score=mean_is,
        mean_oos_score=mean_oos,
        efficiency=efficiency,
        overfit=overfit,
        skipped=len(skipped),
    )
