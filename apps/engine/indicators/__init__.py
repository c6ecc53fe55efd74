"""Vectorised technical indicators (numpy/pandas only) and exact cross detection.

Every indicator takes 1-D float series and returns float64 arrays of the same length, NaN
during warmup, agreeing with TA-Lib (or `ta` for VWAP and Donchian) to 1e-9 after warmup.
`INDICATORS` / `compute` are the registry that condition trees and templates resolve through.
"""

from apps.engine.indicators._core import IndicatorError
from apps.engine.indicators.cross import crosses_above, crosses_below
from apps.engine.indicators.momentum import macd, rsi, stochastic
from apps.engine.indicators.moving_averages import ema, sma, wma
from apps.engine.indicators.registry import (
    INDICATORS,
    IndicatorSpec,
    ParamSpec,
    compute,
    get_spec,
)
from apps.engine.indicators.trend import adx, dmi, minus_di, plus_di
from apps.engine.indicators.volatility import atr, bollinger, donchian, supertrend, true_range
from apps.engine.indicators.volume import obv, vwap

__all__ = [
    "INDICATORS",
    "IndicatorError",
    "IndicatorSpec",
    "ParamSpec",
    "adx",
    "atr",
    "bollinger",
    "compute",
    "crosses_above",
    "crosses_below",
    "dmi",
    "donchian",
    "ema",
    "get_spec",
    "macd",
    "minus_di",
    "obv",
    "plus_di",
    "rsi",
    "sma",
    "stochastic",
    "supertrend",
    "true_range",
    "vwap",
    "wma",
]
