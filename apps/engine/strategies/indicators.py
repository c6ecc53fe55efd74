"""Indicator values for strategies, computed once per series and cut to the window.

A bot computes on its window. A backtest computes once over all candles and hands each bar
the first t+1 values: every indicator here is causal (the value at t uses candles up to t,
the engine's no-look-ahead property), so the prefix equals a computation on the window
itself. tests/engine/test_sdk.py checks that on real candles.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apps.engine.candles import CandleArrays, FloatArray
from apps.engine.indicators import INDICATORS, compute, get_spec


class IndicatorCache:
    def __init__(self, candles: CandleArrays) -> None:
        self.candles = candles
        self.values: dict[tuple[str, tuple[tuple[str, Any], ...]], dict[str, FloatArray]] = {}

    def series(self, name: str, params: Mapping[str, Any], output: str | None) -> FloatArray:
        spec = get_spec(name)
        key = (name, tuple(sorted(spec.resolve(params).items())))
        if key not in self.values:
            fields = {f: self.candles.field(f) for f in INDICATORS[name].inputs}
            self.values[key] = compute(name, dict(params), fields)
        outputs = self.values[key]
        chosen = output if output is not None else spec.outputs[0]
        if chosen not in outputs:
            raise ValueError(f"{name} has outputs {', '.join(spec.outputs)}, not {chosen!r}")
        return outputs[chosen]

    def window(self, length: int) -> WindowIndicators:
        return WindowIndicators(self, length)


class WindowIndicators:
    """The `IndicatorSource` for one bar: the cache's series cut to `length` values."""

    def __init__(self, cache: IndicatorCache, length: int) -> None:
        self.cache, self.length = cache, length

    def get(self, name: str, params: Mapping[str, Any], output: str | None) -> FloatArray:
        return self.cache.series(name, params, output)[: self.length]
