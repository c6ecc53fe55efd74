"""Volume indicators: rolling VWAP and on-balance volume."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from apps.engine.indicators._core import FloatArray, as_float_arrays, check_int, rolling_sum


def vwap(
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    volume: npt.ArrayLike,
    period: int = 14,
) -> FloatArray:
    """Rolling volume-weighted average of the typical price (high + low + close) / 3 over
    `period` bars, as `ta.volume.VolumeWeightedAveragePrice`. NaN where the window traded no
    volume at all (the average is undefined there)."""
    period = check_int("period", period)
    h, lo, c, v = as_float_arrays(high=high, low=low, close=close, volume=volume)
    typical = (h + lo + c) / 3.0
    total_pv = rolling_sum(typical * v, period)
    total_volume = rolling_sum(v, period)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = total_pv / total_volume
    out[total_volume == 0.0] = np.nan
    return out


def obv(close: npt.ArrayLike, volume: npt.ArrayLike) -> FloatArray:
    """On-balance volume as TA-Lib: starts at volume[0], then adds the bar's volume when the
    close rises, subtracts it when it falls, and is unchanged when the close is equal."""
    c, v = as_float_arrays(close=close, volume=volume)
    signed = np.empty_like(v)
    if len(v):
        signed[0] = v[0]
        signed[1:] = np.sign(np.diff(c)) * v[1:]
    # np.cumsum adds sequentially, the same order as TA-Lib's loop.
    return np.cumsum(signed)
