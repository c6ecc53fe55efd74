"""Ready strategies: condition trees with typed parameters and a note on when each works.

The composer is a weighted vote (see apps.engine.conditions): each signal's weight and the
threshold are parameters, so the optimiser can tune how much each signal counts.
Grid and DCA are not condition trees: they keep resting orders and averaging state, so
they run on the event path; their parameter schemas live here all the same.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from apps.engine.conditions import ConditionError, validate_tree

ParamType = Literal["int", "float"]
Tree = dict[str, Any]


class TemplateError(ValueError):
    """Bad template name or parameters; `field` names the parameter."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: ParamType
    default: float
    minimum: float
    maximum: float
    help: str

    def coerce(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TemplateError(f"{self.name} must be a number", self.name)
        if self.type == "int" and not float(value).is_integer():
            raise TemplateError(f"{self.name} must be a whole number, got {value}", self.name)
        if not self.minimum <= value <= self.maximum:
            raise TemplateError(
                f"{self.name} must be between {self.minimum:g} and {self.maximum:g}, got {value}",
                self.name,
            )
        return int(value) if self.type == "int" else float(value)


@dataclass(frozen=True)
class Template:
    name: str
    title: str
    description: str
    when_it_works: str
    kind: Literal["conditions", "event"]
    params: tuple[ParamSpec, ...]
    entry: Tree | None = None
    exit: Tree | None = None
    check: Callable[[Mapping[str, float]], None] | None = None

    def resolve_params(self, given: Mapping[str, Any] | None) -> dict[str, float]:
        given = dict(given or {})
        known = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise TemplateError(
                f"unknown parameter {unknown[0]!r} for {self.name}; "
                f"expected one of: {', '.join(known)}",
                unknown[0],
            )
        resolved = {
            name: spec.coerce(given.get(name, spec.default)) for name, spec in known.items()
        }
        if self.check is not None:
            self.check(resolved)
        return resolved


def _ind(name: str, output: str | None = None, shift: int = 0, **params: str) -> dict[str, Any]:
    operand: dict[str, Any] = {
        "indicator": name,
        "params": {k: {"param": v} for k, v in params.items()},
    }
    if output:
        operand["output"] = output
    if shift:
        operand["shift"] = shift
    return operand


def _leaf(left: Any, op: str, right: Any) -> Tree:
    return {"left": left, "op": op, "right": right}


def _fast_below_slow(params: Mapping[str, float]) -> None:
    if params["fast"] >= params["slow"]:
        raise TemplateError("fast must be shorter than slow", "fast")


def _oversold_below_overbought(params: Mapping[str, float]) -> None:
    if params["oversold"] >= params["overbought"]:
        raise TemplateError("oversold must be below overbought", "oversold")


def _period(name: str, default: int, help_text: str) -> ParamSpec:
    return ParamSpec(name, "int", default, 2, 1000, help_text)


def _cross(indicator: str, title: str, when: str) -> Template:
    fast, slow = _ind(indicator, period="fast"), _ind(indicator, period="slow")
    return Template(
        name=f"{indicator}_cross",
        title=title,
        description=(
            f"Buys when the fast {indicator.upper()} crosses above the slow one; sells on the "
            f"cross back down."
        ),
        when_it_works=when,
        kind="conditions",
        params=(
            _period("fast", 10, "Bars in the fast average."),
            _period("slow", 30, "Bars in the slow average; longer than fast."),
        ),
        entry=_leaf(fast, "crosses_above", slow),
        exit=_leaf(fast, "crosses_below", slow),
        check=_fast_below_slow,
    )


TEMPLATES: dict[str, Template] = {}


def _register(template: Template) -> None:
    TEMPLATES[template.name] = template


_register(_cross("sma", "SMA cross", "Clear, lasting trends; it whipsaws in sideways markets."))
_register(
    _cross("ema", "EMA cross", "Trends, reacting faster than SMA; more false signals in chop.")
)
_register(
    Template(
        name="macd",
        title="MACD",
        description=(
            "Buys when the MACD line crosses above its signal line; sells on the cross back down."
        ),
        when_it_works="Trending markets with pullbacks; lags at sharp reversals.",
        kind="conditions",
        params=(
            _period("fast", 12, "Fast EMA bars."),
            _period("slow", 26, "Slow EMA bars."),
            _period("signal", 9, "Signal-line EMA bars."),
        ),
        entry=_leaf(
            _ind("macd", "macd", fast="fast", slow="slow", signal="signal"),
            "crosses_above",
            _ind("macd", "signal", fast="fast", slow="slow", signal="signal"),
        ),
        exit=_leaf(
            _ind("macd", "macd", fast="fast", slow="slow", signal="signal"),
            "crosses_below",
            _ind("macd", "signal", fast="fast", slow="slow", signal="signal"),
        ),
        check=_fast_below_slow,
    )
)
_register(
    Template(
        name="rsi_swing",
        title="RSI swing",
        description=(
            "Buys when RSI climbs back above the oversold level; sells when it falls back below "
            "overbought."
        ),
        when_it_works="Ranging markets that swing between levels; loses in strong one-way trends.",
        kind="conditions",
        params=(
            _period("period", 14, "RSI bars."),
            ParamSpec("oversold", "float", 30, 1, 99, "Buy when RSI crosses up through this."),
            ParamSpec("overbought", "float", 70, 1, 99, "Sell when RSI crosses down through this."),
        ),
        entry=_leaf(_ind("rsi", period="period"), "crosses_above", {"param": "oversold"}),
        exit=_leaf(_ind("rsi", period="period"), "crosses_below", {"param": "overbought"}),
        check=_oversold_below_overbought,
    )
)
_register(
    Template(
        name="bollinger_reversion",
        title="Bollinger reversion",
        description=(
            "Buys when the close drops below the lower band; sells when it returns above the "
            "middle band."
        ),
        when_it_works="Mean-reverting, range-bound markets; breakouts run it over.",
        kind="conditions",
        params=(
            _period("period", 20, "Bars in the moving average."),
            ParamSpec("num_std", "float", 2.0, 0.5, 5, "Band width in standard deviations."),
        ),
        entry=_leaf(
            {"field": "close"}, "<", _ind("bollinger", "lower", period="period", num_std="num_std")
        ),
        exit=_leaf(
            {"field": "close"}, ">", _ind("bollinger", "middle", period="period", num_std="num_std")
        ),
    )
)
_register(
    Template(
        name="donchian_breakout",
        title="Donchian breakout",
        description=(
            "Buys when the close breaks the highest high of the previous N bars; sells below the "
            "lowest low of the previous M bars."
        ),
        when_it_works="Breakouts into new trends (the turtle rules); many small losses in ranges.",
        kind="conditions",
        params=(
            _period("entry_period", 20, "Bars whose high must be broken."),
            _period("exit_period", 10, "Bars whose low ends the trade."),
        ),
        entry=_leaf(
            {"field": "close"}, ">", _ind("donchian", "upper", shift=1, period="entry_period")
        ),
        exit=_leaf(
            {"field": "close"}, "<", _ind("donchian", "lower", shift=1, period="exit_period")
        ),
    )
)
_register(
    Template(
        name="scalping",
        title="Scalping (EMA + RSI)",
        description=(
            "On 1m/5m candles: buys when the fast EMA is above the slow one and RSI crosses up "
            "through the trigger; sells when RSI is overbought or the trend flips."
        ),
        when_it_works="Liquid pairs on 1m-5m with low fees; fees and slippage eat it elsewhere.",
        kind="conditions",
        params=(
            _period("fast", 9, "Fast EMA bars."),
            _period("slow", 21, "Slow EMA bars."),
            _period("rsi_period", 7, "RSI bars."),
            ParamSpec("rsi_trigger", "float", 50, 1, 99, "RSI level that triggers the entry."),
            ParamSpec("rsi_exit", "float", 75, 1, 99, "RSI level that takes profit."),
        ),
        entry={
            "all": [
                _leaf(_ind("ema", period="fast"), ">", _ind("ema", period="slow")),
                _leaf(_ind("rsi", period="rsi_period"), "crosses_above", {"param": "rsi_trigger"}),
            ]
        },
        exit={
            "any": [
                _leaf(_ind("rsi", period="rsi_period"), ">", {"param": "rsi_exit"}),
                _leaf(_ind("ema", period="fast"), "crosses_below", _ind("ema", period="slow")),
            ]
        },
        check=_fast_below_slow,
    )
)
_MACD_LINE = {"indicator": "macd", "output": "macd"}
_MACD_SIGNAL = {"indicator": "macd", "output": "signal"}
_COMPOSER_ENTRY: Tree = {
    "weighted": [
        {
            "weight": {"param": "rsi_weight"},
            "when": _leaf(_ind("rsi", period="rsi_period"), "<", {"param": "oversold"}),
        },
        {"weight": {"param": "macd_weight"}, "when": _leaf(_MACD_LINE, ">", _MACD_SIGNAL)},
        {
            "weight": {"param": "trend_weight"},
            "when": _leaf({"field": "close"}, ">", _ind("sma", period="trend_period")),
        },
    ],
    "threshold": {"param": "threshold"},
}


def _composer_check(params: Mapping[str, float]) -> None:
    _oversold_below_overbought(params)
    # A threshold above the weights' sum would never buy; the optimiser skips such a draw.
    try:
        validate_tree(_COMPOSER_ENTRY, params, path="entry")
    except ConditionError as exc:
        raise TemplateError(f"threshold {exc.problems[0][1]}", "threshold") from exc


def _weight(name: str, what: str) -> ParamSpec:
    return ParamSpec(f"{name}_weight", "float", 1, 0, 5, f"How much {what} counts; 0 ignores it.")


_register(
    Template(
        name="composer",
        title="Weighted composer",
        description=(
            "Buys when the weights of three signals add up to the threshold: RSI oversold, "
            "MACD above its signal line, close above the trend SMA (two of three by default). "
            "Sells when RSI is overbought or MACD crosses below its signal."
        ),
        when_it_works=(
            "Daily or 4h candles in uptrends with pullbacks, where no single signal is "
            "reliable alone; on 1h and below the MACD vote flips so often that fees eat it."
        ),
        kind="conditions",
        params=(
            _period("rsi_period", 14, "RSI bars."),
            ParamSpec("oversold", "float", 35, 1, 99, "RSI below this votes to buy."),
            ParamSpec("overbought", "float", 70, 1, 99, "RSI above this sells."),
            _period("trend_period", 100, "Bars in the trend SMA."),
            _weight("rsi", "RSI oversold"),
            _weight("macd", "MACD above its signal"),
            _weight("trend", "close above the trend SMA"),
            ParamSpec("threshold", "float", 2, 0.1, 15, "Buy when the true votes add up to this."),
        ),
        entry=_COMPOSER_ENTRY,
        exit={
            "any": [
                _leaf(_ind("rsi", period="rsi_period"), ">", {"param": "overbought"}),
                _leaf(_MACD_LINE, "crosses_below", _MACD_SIGNAL),
            ]
        },
        check=_composer_check,
    )
)
_register(
    Template(
        name="grid",
        title="Grid",
        description=(
            "Splits capital over buy levels spaced evenly below the start price and sells each "
            "lot one level higher."
        ),
        when_it_works=(
            "Sideways markets oscillating within the grid; a breakdown leaves you holding every "
            "lot."
        ),
        kind="event",
        params=(
            ParamSpec("levels", "int", 10, 2, 200, "Number of grid levels."),
            ParamSpec(
                "spacing",
                "float",
                0.01,
                0.001,
                0.5,
                "Distance between levels as a fraction of price.",
            ),
        ),
    )
)
_register(
    Template(
        name="dca",
        title="DCA",
        description=(
            "Buys a fixed slice every N bars and adds safety orders after drops; sells everything"
            " at the take-profit over the average price."
        ),
        when_it_works=(
            "Accumulating in markets expected to recover; deep, long declines tie up all capital."
        ),
        kind="event",
        params=(
            ParamSpec("interval", "int", 24, 1, 10_000, "Bars between regular buys."),
            ParamSpec("slice", "float", 0.1, 0.001, 1, "Fraction of starting cash per buy."),
            ParamSpec(
                "take_profit",
                "float",
                0.05,
                0.001,
                1,
                "Sell all at this gain over the average price.",
            ),
        ),
    )
)


def template_get(name: str) -> Template:
    try:
        return TEMPLATES[name]
    except KeyError:
        raise TemplateError(
            f"unknown template {name!r}; use one of: {', '.join(sorted(TEMPLATES))}", "strategy"
        ) from None
