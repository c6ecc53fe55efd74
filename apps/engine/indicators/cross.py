"""Exact cross detection between two series (or a series and a constant).

A cross up at bar t means a[t-1] < b[t-1] and a[t] > b[t], strictly on both sides: an exact
tie a == b is never a cross, neither on the bar of the tie nor on the bar after it. Bar 0 and
any bar where a NaN is involved (now or on the previous bar) is never a cross.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from apps.engine.indicators._core import BoolArray, IndicatorError, as_float_array


def _pair(a: npt.ArrayLike, b: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray, int]:
    a_arr = np.asarray(a, dtype=np.float64)
    b_arr = np.asarray(b, dtype=np.float64)
    if a_arr.ndim == 0 and b_arr.ndim == 0:
        raise IndicatorError("a cross needs at least one series, got two scalars")
    if a_arr.ndim == 0:
        b_arr = as_float_array(b_arr, "b")
        a_arr = np.full(len(b_arr), float(a_arr))
    elif b_arr.ndim == 0:
        a_arr = as_float_array(a_arr, "a")
        b_arr = np.full(len(a_arr), float(b_arr))
    else:
        a_arr = as_float_array(a_arr, "a")
        b_arr = as_float_array(b_arr, "b")
        if len(a_arr) != len(b_arr):
            raise IndicatorError(
                f"cross inputs must have the same length, got {len(a_arr)} and {len(b_arr)}"
            )
    return a_arr, b_arr, len(a_arr)


def crosses_above(a: npt.ArrayLike, b: npt.ArrayLike) -> BoolArray:
    """True at bar t iff a[t-1] < b[t-1] and a[t] > b[t] (NaN comparisons are False)."""
    a_arr, b_arr, n = _pair(a, b)
    out = np.zeros(n, dtype=np.bool_)
    if n > 1:
        out[1:] = (a_arr[:-1] < b_arr[:-1]) & (a_arr[1:] > b_arr[1:])
    return out


def crosses_below(a: npt.ArrayLike, b: npt.ArrayLike) -> BoolArray:
    """True at bar t iff a[t-1] > b[t-1] and a[t] < b[t] (NaN comparisons are False)."""
    a_arr, b_arr, n = _pair(a, b)
    out = np.zeros(n, dtype=np.bool_)
    if n > 1:
        out[1:] = (a_arr[:-1] > b_arr[:-1]) & (a_arr[1:] < b_arr[1:])
    return out
