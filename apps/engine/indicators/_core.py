"""Shared plumbing for the indicator functions: array coercion, argument checks, smoothing.

Everything here is numpy/pandas only. pandas is used in this one module, and every pandas
result is turned back into a typed float64 array here.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IndexArray = npt.NDArray[np.int64]
# values, window starts, window ends (exclusive), minimum observations -> one value per row
WindowKernel = Callable[[FloatArray, IndexArray, IndexArray, int], FloatArray]

# TA-Lib's TA_IS_ZERO(x) is -1e-8 < x < 1e-8. We use it only on scale-free quantities (the
# DI sum, 0..200). On price-scaled ones (RSI's average move, ADX's true range) an absolute
# epsilon would zero out every coin priced below about 1e-6, so those test for exact zero.
TA_EPSILON = 1e-8


class IndicatorError(ValueError):
    """A bad indicator name, parameter or input; the message names the offending item.

    `indicator` and `param` (when known) let callers such as condition-tree validation point
    at the exact node and field.
    """

    def __init__(
        self, message: str, *, indicator: str | None = None, param: str | None = None
    ) -> None:
        super().__init__(message)
        self.indicator = indicator
        self.param = param

    @property
    def parameter(self) -> str | None:
        """Alias of `param`."""
        return self.param


def as_float_array(values: npt.ArrayLike, name: str = "values") -> FloatArray:
    """Return `values` as a 1-D float64 array (no copy when it already is one)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise IndicatorError(f"{name} must be one-dimensional, got {arr.ndim} dimensions")
    return arr


def as_float_arrays(**named: npt.ArrayLike) -> list[FloatArray]:
    """Coerce several inputs that must share one length (high/low/close/volume)."""
    arrays = [as_float_array(v, k) for k, v in named.items()]
    lengths = {len(a) for a in arrays}
    if len(lengths) > 1:
        detail = ", ".join(f"{k}={len(a)}" for k, a in zip(named, arrays, strict=True))
        raise IndicatorError(f"inputs must have the same length, got {detail}")
    return arrays


def check_int(name: str, value: object, low: int = 1, high: int | None = None) -> int:
    """Validate an integer parameter (bools are rejected although Python counts them as ints)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise IndicatorError(f"{name} must be an integer, got {value!r}", param=name)
    ivalue = int(value)
    if ivalue < low or (high is not None and ivalue > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise IndicatorError(f"{name} must be an integer {bound}, got {ivalue}", param=name)
    return ivalue


def check_float(name: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise IndicatorError(f"{name} must be a number, got {value!r}", param=name)
    fvalue = float(value)
    if not (math.isfinite(fvalue) and low <= fvalue <= high):
        raise IndicatorError(
            f"{name} must be a number between {low} and {high}, got {value}", param=name
        )
    return fvalue


def nan_array(n: int) -> FloatArray:
    return np.full(n, np.nan, dtype=np.float64)


def first_valid(values: FloatArray) -> int:
    """Index of the first non-NaN value (len(values) when there is none)."""
    if not len(values):
        return 0
    missing = np.isnan(values)
    first = int(np.argmin(missing))  # the first False, without listing every valid index
    return len(values) if missing[first] else first


def to_float_array(obj: object) -> FloatArray:
    """A pandas result (or anything array-like) as a writable float64 ndarray.

    pandas 3 (copy-on-write) hands out read-only views; callers own our outputs, so copy then.
    """
    arr = np.asarray(obj, dtype=np.float64)
    return arr if arr.flags.writeable else arr.copy()


def release(result: pd.Series) -> FloatArray:
    """The values of a pandas result nothing else holds, writable and without a copy.

    A million-bar copy costs page faults as well as the copy; `to_float_array` is for
    results that may still be shared.
    """
    arr = result.to_numpy(dtype=np.float64)
    if not arr.flags.writeable:
        try:
            arr.flags.writeable = True  # the memory is the result's own, and we hold it alone
        except ValueError:
            arr = arr.copy()
    return arr


def _pandas_aggregations() -> Any:
    """pandas' compiled window module, whose kernels `Series.rolling` and `.ewm` run.

    Called directly they skip the Series, the million-row helper arrays pandas builds per
    call (window bounds, EWM time deltas) and the copy out of a read-only result, which on
    a million bars cost about as much as the kernels themselves. The module is private, so
    when a pandas release moves it we fall back to the public API (tests pin both to the
    same bits).
    """
    try:
        return importlib.import_module("pandas._libs.window.aggregations")
    except ImportError:
        return None


_AGGREGATIONS = _pandas_aggregations()
_KERNELS: dict[str, WindowKernel] = {
    name: kernel
    for name in ("mean", "sum", "max", "min")
    if callable(kernel := getattr(_AGGREGATIONS, f"roll_{name}", None))
}
_EWM_KERNEL: Callable[..., FloatArray] | None = getattr(_AGGREGATIONS, "ewm", None)


def _without_infinities(values: FloatArray) -> FloatArray:
    """NaN for each infinity, as pandas hands its kernels."""
    if math.isfinite(float(np.sum(values))):  # the usual case, found without a temporary
        return values
    infinite = np.isinf(values)
    return np.where(infinite, np.nan, values) if infinite.any() else values


def rolling_window(values: FloatArray, period: int, aggregate: str) -> FloatArray:
    """pandas' `Series(values).rolling(period).<aggregate>()`, bit for bit, as a new array."""
    kernel = _KERNELS.get(aggregate)
    if kernel is None or len(values) == 0:
        rolling = pd.Series(values).rolling(period)
        return to_float_array(getattr(rolling, aggregate)().to_numpy())
    # Window t is [max(t + 1 - period, 0), t + 1): both bounds are views of one ramp.
    ramp = np.arange(1 - period, len(values) + 1, dtype=np.int64)
    np.maximum(ramp, 0, out=ramp)
    start, end = ramp[: len(values)], ramp[period:]
    return np.asarray(kernel(_without_infinities(values), start, end, period), dtype=np.float64)


def ewm_mean(values: FloatArray, alpha: float, *, ignore_na: bool) -> FloatArray:
    """pandas' `Series(values).ewm(alpha=alpha, adjust=False, ignore_na=...).mean()`, bit
    for bit, as a new array."""
    if _EWM_KERNEL is None or len(values) == 0:
        smoothed = pd.Series(values).ewm(alpha=alpha, adjust=False, ignore_na=ignore_na)
        return release(smoothed.mean())
    com = (1 - alpha) / alpha  # pandas' own conversion, so the kernel gets the same alpha back
    whole = (np.zeros(1, dtype=np.int64), np.full(1, len(values), dtype=np.int64))
    result = _EWM_KERNEL(_without_infinities(values), *whole, 1, com, False, ignore_na)
    return np.asarray(result, dtype=np.float64)


def rolling_mean(values: FloatArray, period: int) -> FloatArray:
    """pandas' rolling mean: a window of equal values gives exactly that value."""
    return rolling_window(values, period, "mean")


def rolling_sum(values: FloatArray, period: int) -> FloatArray:
    return rolling_window(values, period, "sum")


def rolling_std(values: FloatArray, period: int, mean: FloatArray) -> FloatArray:
    """Population (ddof=0) standard deviation over a rolling window, around `mean` (the
    window's rolling mean, e.g. from `rolling_mean`).

    Each window is summed directly (two-pass form, in chunks of a sliding-window view), so
    the result is accurate to a few ulps of the deviation and exactly 0 for a window of equal
    values. pandas' rolling std and TA-Lib's running sum of squares both carry error along the
    series (pandas' reaches 1.8e-4 on BTC-USD_1h.csv and is never exactly 0 on flat windows).
    """
    n = len(values)
    out = nan_array(n)
    if n < period:
        return out
    windows = np.lib.stride_tricks.sliding_window_view(values, period)
    centres = mean[period - 1 :]
    chunk = max(1, (1 << 20) // period)
    for begin in range(0, len(windows), chunk):
        block = windows[begin : begin + chunk] - centres[begin : begin + chunk, None]
        np.square(block, out=block)
        out[period - 1 + begin : period - 1 + begin + len(block)] = block.mean(axis=1)
    return np.sqrt(out, out=out)


def rolling_max(values: FloatArray, period: int) -> FloatArray:
    return rolling_window(values, period, "max")


def rolling_min(values: FloatArray, period: int) -> FloatArray:
    return rolling_window(values, period, "min")


def seeded_ewm(
    values: FloatArray,
    alpha: float,
    seed_index: int,
    seed: float,
    *,
    skip_nan: bool = False,
    overwrite: bool = False,
) -> FloatArray:
    """y[seed_index] = seed, then y[t] = (1 - alpha) * y[t-1] + alpha * values[t]; NaN before.

    This is TA-Lib's seeding for EMA and Wilder smoothing (the seed is the simple average of
    the first window). The recurrence runs in pandas' compiled ewm (adjust=False). With
    `skip_nan` a NaN observation leaves the average unchanged and the output carries it;
    otherwise NaN inputs after the seed give NaN outputs at those bars. With `overwrite`
    the caller hands `values` over as scratch space, which saves a copy of the series.
    """
    n = len(values)
    if seed_index >= n or math.isnan(seed):
        return nan_array(n)
    work = values if overwrite else values.copy()
    # pandas' recurrence starts at the first observation, so NaN before the seed makes the
    # whole series the smoothing of the seed and what follows it, aligned as the output.
    work[:seed_index] = np.nan
    work[seed_index] = seed
    gaps = None if skip_nan else np.flatnonzero(np.isnan(work[seed_index + 1 :]))
    out = ewm_mean(work, alpha, ignore_na=skip_nan)
    if gaps is not None and len(gaps):
        out[seed_index + 1 + gaps] = np.nan
    return out


def window_mean(window: FloatArray) -> float:
    """Mean of one window: exactly the value when all are equal, else a correctly rounded sum."""
    if window.size and bool(np.all(window == window[0])):
        return float(window[0])
    return math.fsum(window.tolist()) / window.size


def seeded_average(
    values: FloatArray, period: int, alpha: float, start: int, *, overwrite: bool = False
) -> FloatArray:
    """Exponential smoothing of values[start:] seeded with the mean of its first `period`
    values, the first output at start + period - 1 (TA-Lib's seeding for EMA and Wilder).
    `overwrite` as in `seeded_ewm`."""
    seed_index = start + period - 1
    if seed_index >= len(values):
        return nan_array(len(values))
    seed = window_mean(values[start : seed_index + 1])
    return seeded_ewm(values, alpha, seed_index, seed, overwrite=overwrite)


def wilder(values: FloatArray, period: int, start: int, *, overwrite: bool = False) -> FloatArray:
    """Wilder's smoothing (alpha = 1/period), seeded as TA-Lib does."""
    return seeded_average(values, period, 1.0 / period, start, overwrite=overwrite)
