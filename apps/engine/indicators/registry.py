"""The indicator registry: what each indicator needs, accepts and returns.

Condition trees, templates and the script SDK resolve indicator references through
`INDICATORS` and `compute`, so parameter validation (with errors naming the parameter) lives
here, in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy.typing as npt

from apps.engine.indicators._core import FloatArray, IndicatorError, as_float_array
from apps.engine.indicators.momentum import macd, rsi, stochastic
from apps.engine.indicators.moving_averages import ema, sma, wma
from apps.engine.indicators.trend import adx, minus_di, plus_di
from apps.engine.indicators.volatility import atr, bollinger, donchian, supertrend
from apps.engine.indicators.volume import obv, vwap

PriceField = Literal["open", "high", "low", "close", "volume"]
ParamValue = int | float
Params = dict[str, ParamValue]
IndicatorFunc = Callable[..., FloatArray | tuple[FloatArray, ...]]


@dataclass(frozen=True)
class ParamSpec:
    """One typed parameter with its default and inclusive bounds."""

    name: str
    kind: Literal["int", "float"]
    default: ParamValue
    min: ParamValue
    max: ParamValue
    description: str = ""

    def validate(self, value: object) -> ParamValue:
        if self.kind == "int":
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not (self.min <= value <= self.max)
            ):
                raise IndicatorError(
                    f"{self.name} must be an integer between {self.min} and {self.max}, "
                    f"got {value!r}",
                    param=self.name,
                )
            return value
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not (self.min <= value <= self.max)  # also rejects NaN
        ):
            raise IndicatorError(
                f"{self.name} must be a number between {self.min} and {self.max}, got {value!r}",
                param=self.name,
            )
        return float(value)


@dataclass(frozen=True)
class IndicatorSpec:
    """An indicator: its function, the price fields it reads (passed positionally, in
    order), its parameters (passed by keyword), its output names and its warmup."""

    name: str
    func: IndicatorFunc
    inputs: tuple[PriceField, ...]
    params: tuple[ParamSpec, ...]
    outputs: tuple[str, ...]
    description: str
    # Bars of NaN at the start of every output (for the default params, from `warmup(params)`).
    warmup: Callable[[Params], int]
    # A check across parameters; returns (parameter, message) when they do not fit together.
    check: Callable[[Params], tuple[str, str] | None] | None = field(default=None)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def defaults(self) -> Params:
        return {p.name: p.default for p in self.params}

    def resolve(self, params: Mapping[str, object] | None = None) -> Params:
        """Validate `params` (omitted ones take their defaults); raise IndicatorError
        naming the bad parameter."""
        given = dict(params or {})
        by_name = {p.name: p for p in self.params}
        for name in given:
            if name not in by_name:
                expected = ", ".join(self.param_names) or "(none)"
                raise IndicatorError(
                    f"unknown parameter {name!r} for {self.name}; expected one of: {expected}",
                    indicator=self.name,
                    param=name,
                )
        resolved: Params = {}
        for spec in self.params:
            try:
                resolved[spec.name] = spec.validate(given.get(spec.name, spec.default))
            except IndicatorError as exc:
                raise IndicatorError(str(exc), indicator=self.name, param=spec.name) from None
        if self.check is not None:
            problem = self.check(resolved)
            if problem is not None:
                param, message = problem
                raise IndicatorError(message, indicator=self.name, param=param)
        return resolved

    def check_params(self, params: Mapping[str, object] | None = None) -> Params:
        """Alias of `resolve`."""
        return self.resolve(params)


def _period(default: int, low: int = 1, name: str = "period", what: str = "bars") -> ParamSpec:
    return ParamSpec(name, "int", default, low, 1000, f"window length in {what}")


def _macd_check(p: Params) -> tuple[str, str] | None:
    if p["fast"] >= p["slow"]:
        return (
            "fast",
            f"fast must be less than slow for macd, got fast={p['fast']}, slow={p['slow']}",
        )
    return None


def _int(p: Params, name: str) -> int:
    return int(p[name])


_CLOSE: tuple[PriceField, ...] = ("close",)
_HLC: tuple[PriceField, ...] = ("high", "low", "close")
_VALUE = ("value",)

_SPECS = (
    IndicatorSpec(
        "sma",
        sma,
        _CLOSE,
        (_period(20),),
        _VALUE,
        "Simple moving average",
        lambda p: _int(p, "period") - 1,
    ),
    IndicatorSpec(
        "ema",
        ema,
        _CLOSE,
        (_period(20),),
        _VALUE,
        "Exponential moving average (TA-Lib seeding)",
        lambda p: _int(p, "period") - 1,
    ),
    IndicatorSpec(
        "wma",
        wma,
        _CLOSE,
        (_period(20),),
        _VALUE,
        "Linearly weighted moving average",
        lambda p: _int(p, "period") - 1,
    ),
    IndicatorSpec(
        "rsi",
        rsi,
        _CLOSE,
        (_period(14),),
        _VALUE,
        "Relative strength index (Wilder)",
        lambda p: _int(p, "period"),
    ),
    IndicatorSpec(
        "macd",
        macd,
        _CLOSE,
        (_period(12, name="fast"), _period(26, 2, name="slow"), _period(9, name="signal")),
        ("macd", "signal", "hist"),
        "Moving average convergence/divergence",
        lambda p: _int(p, "slow") + _int(p, "signal") - 2,
        _macd_check,
    ),
    IndicatorSpec(
        "bollinger",
        bollinger,
        _CLOSE,
        (_period(20), ParamSpec("num_std", "float", 2.0, 0.1, 10.0, "band width in std devs")),
        ("upper", "middle", "lower"),
        "Bollinger Bands (population std dev)",
        lambda p: _int(p, "period") - 1,
    ),
    IndicatorSpec(
        "atr",
        atr,
        _HLC,
        (_period(14),),
        _VALUE,
        "Average true range (Wilder)",
        lambda p: _int(p, "period"),
    ),
    IndicatorSpec(
        "stochastic",
        stochastic,
        _HLC,
        (_period(14, name="k_period"), _period(3, name="k_smooth"), _period(3, name="d_period")),
        ("k", "d"),
        "Slow stochastic oscillator (SMA smoothing)",
        lambda p: _int(p, "k_period") + _int(p, "k_smooth") + _int(p, "d_period") - 3,
    ),
    IndicatorSpec(
        "adx",
        adx,
        _HLC,
        (_period(14, 2),),
        _VALUE,
        "Average directional index (Wilder)",
        lambda p: 2 * _int(p, "period") - 1,
    ),
    IndicatorSpec(
        "plus_di",
        plus_di,
        _HLC,
        (_period(14, 2),),
        _VALUE,
        "Plus directional indicator",
        lambda p: _int(p, "period"),
    ),
    IndicatorSpec(
        "minus_di",
        minus_di,
        _HLC,
        (_period(14, 2),),
        _VALUE,
        "Minus directional indicator",
        lambda p: _int(p, "period"),
    ),
    IndicatorSpec(
        "vwap",
        vwap,
        ("high", "low", "close", "volume"),
        (_period(14),),
        _VALUE,
        "Rolling volume-weighted average price",
        lambda p: _int(p, "period") - 1,
    ),
    IndicatorSpec("obv", obv, ("close", "volume"), (), _VALUE, "On-balance volume", lambda p: 0),
    IndicatorSpec(
        "donchian",
        donchian,
        ("high", "low"),
        (_period(20),),
        ("upper", "middle", "lower"),
        "Donchian channel",
        lambda p: _int(p, "period") - 1,
    ),
    IndicatorSpec(
        "supertrend",
        supertrend,
        _HLC,
        (_period(10), ParamSpec("multiplier", "float", 3.0, 0.1, 10.0, "ATR multiple")),
        ("line", "direction"),
        "Supertrend (direction +1 up, -1 down)",
        lambda p: _int(p, "period"),
    ),
)

INDICATORS: dict[str, IndicatorSpec] = {spec.name: spec for spec in _SPECS}


def get_spec(name: str) -> IndicatorSpec:
    spec = INDICATORS.get(name)
    if spec is None:
        expected = ", ".join(sorted(INDICATORS))
        raise IndicatorError(
            f"unknown indicator {name!r}; expected one of: {expected}", indicator=name
        )
    return spec


def compute(
    name: str,
    params: Mapping[str, object] | None,
    fields: Mapping[str, npt.ArrayLike] | Mapping[PriceField, npt.ArrayLike],
) -> dict[str, FloatArray]:
    """Validate `params` for indicator `name`, compute it on `fields` (price field name ->
    series) and return {output name: array}, each as long as the inputs."""
    spec = get_spec(name)
    resolved = spec.resolve(params)
    args = []
    for field_name in spec.inputs:
        value = fields.get(field_name)
        if value is None:
            raise IndicatorError(f"{name} needs the {field_name!r} price field", indicator=name)
        args.append(as_float_array(value, field_name))
    result = spec.func(*args, **resolved)
    outputs = result if isinstance(result, tuple) else (result,)
    return dict(zip(spec.outputs, outputs, strict=True))
