"""Exact cross detection, and the exact SMA ties in the real Gemini BTC-USD hourly candles.

A cross up at bar t is a[t-1] < b[t-1] and a[t] > b[t], strictly on both sides, so an exact
tie a == b is never a cross: not on the tie bar and not on the bar after it. That only holds
in practice if two SMAs of the same prices really tie; pandas' rolling mean (our `sma`) makes
them tie, a cumsum-difference SMA leaves residue and invents crosses. BTC-USD_1h.csv has such
ties (flat, zero-volume Gemini hours and coincidences), pinned below.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from apps.engine.indicators import IndicatorError, crosses_above, crosses_below, sma
from tests.engine.indicators_data import load

NAN = float("nan")


def test_a_strict_cross_in_both_directions():
    a = [1.0, 3.0, 1.0, 3.0]
    b = [2.0, 2.0, 2.0, 2.0]
    assert crosses_above(a, b).tolist() == [False, True, False, True]
    assert crosses_below(a, b).tolist() == [False, False, True, False]


def test_touching_and_leaving_through_a_tie_is_never_a_cross():
    a = [1.0, 2.0, 3.0, 2.0, 1.0, 2.0, 2.0, 3.0]
    b = [2.0] * 8
    assert not crosses_above(a, b).any()
    assert not crosses_below(a, b).any()


def test_first_bar_and_nan_are_never_a_cross():
    assert crosses_above([5.0], [1.0]).tolist() == [False]
    a = [1.0, NAN, 3.0, 1.0, 3.0]
    b = [2.0, 2.0, 2.0, NAN, 2.0]
    assert crosses_above(a, b).tolist() == [False] * 5
    assert crosses_below(a, b).tolist() == [False] * 5
    assert crosses_above(np.array([]), np.array([])).shape == (0,)


def test_scalars_on_either_side():
    rsi = np.array([35.0, 29.0, 30.0, 31.0, 25.0, 32.0])
    assert crosses_below(rsi, 30).tolist() == [False, True, False, False, True, False]
    assert crosses_above(rsi, 30.0).tolist() == [False, False, False, False, False, True]
    assert crosses_above(30, rsi).tolist() == crosses_below(rsi, 30).tolist()
    assert crosses_above(rsi, 30).dtype == np.bool_


def test_bad_inputs_are_rejected():
    with pytest.raises(IndicatorError, match="two scalars"):
        crosses_above(1.0, 2.0)
    with pytest.raises(IndicatorError, match="same length, got 3 and 2"):
        crosses_below([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(IndicatorError, match="one-dimensional"):
        crosses_above(np.ones((2, 2)), 1.0)


# ---------------------------------------------------------------- real ties

GEMINI = "BTC-USD_1h.csv"

# Every bar of BTC-USD_1h.csv where SMA(fast) == SMA(slow) exactly, per pair.
TIES = {
    (10, 30): ["2016-12-15T10:00:00Z"],  # the pair of the sma_cross benchmark
    (10, 20): [
        "2015-12-08T04:00:00Z",
        "2016-09-25T06:00:00Z",
        *[f"2017-08-26T{h:02d}:00:00Z" for h in range(18, 24)],
        *[f"2017-08-27T{h:02d}:00:00Z" for h in range(3)],
    ],
    (5, 20): [
        "2016-02-27T14:00:00Z",
        "2016-09-18T09:00:00Z",
        "2017-01-28T08:00:00Z",
        *[f"2017-08-26T{h:02d}:00:00Z" for h in range(18, 24)],
        *[f"2017-08-27T{h:02d}:00:00Z" for h in range(3)],
    ],
    (12, 26): [f"2017-08-27T{h:02d}:00:00Z" for h in range(3)],
    (9, 21): [
        *[f"2017-08-26T{h:02d}:00:00Z" for h in range(19, 24)],
        *[f"2017-08-27T{h:02d}:00:00Z" for h in range(3)],
    ],
    (20, 50): [],
    (50, 200): [],
}


def _cumsum_sma(values: np.ndarray, period: int) -> np.ndarray:
    """The shortcut the issue warns about: a difference of cumulative sums."""
    total = np.cumsum(values)
    out = np.full(len(values), np.nan)
    out[period - 1] = total[period - 1] / period
    out[period:] = (total[period:] - total[:-period]) / period
    return out


@pytest.mark.parametrize(("fast", "slow"), sorted(TIES))
def test_exact_sma_ties_in_gemini_candles_are_pinned_and_never_cross(fast, slow):
    d = load(GEMINI)
    f, s = sma(d.close, fast), sma(d.close, slow)
    ties = np.flatnonzero(f == s)
    assert d.timestamp[ties].tolist() == TIES[(fast, slow)]
    up, down = crosses_above(f, s), crosses_below(f, s)
    for i in ties:
        # neither on the tie bar nor on the bar after it, whichever way the SMAs then go
        assert not up[i] and not down[i] and not up[i + 1] and not down[i + 1]


def test_the_sma_10_30_tie_and_what_a_cumsum_sma_would_do_there():
    d = load(GEMINI)
    t = d.index_of("2016-12-15T10:00:00Z")
    fast, slow = sma(d.close, 10), sma(d.close, 30)
    # 09:00 fast above slow, 10:00 an exact tie at 777.368, 11:00 fast below.
    assert fast[t - 1] > slow[t - 1]
    assert fast[t] == slow[t] == 777.368
    assert fast[t + 1] < slow[t + 1]
    down = crosses_below(fast, slow)
    assert not down[t] and not down[t + 1]  # the tie breaks the cross: no cross down here
    next_down = np.flatnonzero(down[t:])[0] + t
    assert d.timestamp[next_down] == "2016-12-15T23:00:00Z"
    assert d.timestamp[np.flatnonzero(crosses_above(fast, slow)[:t])[-1]] == "2016-12-15T08:00:00Z"

    # A cumsum-difference SMA misses the tie by 6.2e-11 and invents a cross down at the tie,
    # 13 hours before the real one: the test would catch such an implementation.
    cfast, cslow = _cumsum_sma(d.close, 10), _cumsum_sma(d.close, 30)
    assert cfast[t] != cslow[t]
    assert cfast[t] - cslow[t] == pytest.approx(-6.2e-11, rel=0.05)
    assert crosses_below(cfast, cslow)[t]
    assert np.flatnonzero(crosses_below(cfast, cslow) != down).tolist() == [t]


def test_flat_zero_volume_hours_make_many_smas_tie_exactly():
    d = load(GEMINI)
    t = d.index_of("2017-08-27T02:00:00Z")
    # 28 hours at 4371.25, 27 of them with zero volume (an exchange outage on Gemini).
    assert (d.close[t - 27 : t + 1] == 4371.25).all()
    assert (d.volume[t - 26 : t + 1] == 0).all()
    for period in (5, 9, 10, 12, 20, 21, 26, 28):
        assert sma(d.close, period)[t] == 4371.25


# ---------------------------------------------------------------- properties

series = hnp.arrays(
    np.float64,
    st.integers(0, 60),
    elements=st.one_of(
        st.sampled_from([0.0, 1.0, 2.0, NAN]),  # few values: many exact ties
        st.floats(-1e6, 1e6, allow_nan=False),
    ),
)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), a=series)
def test_cross_properties(data, a):
    b = data.draw(hnp.arrays(np.float64, len(a), elements=st.sampled_from([0.0, 1.0, 2.0, NAN])))
    up, down = crosses_above(a, b), crosses_below(a, b)
    assert up.shape == down.shape == a.shape
    assert not (up & down).any()
    assert (up == crosses_below(b, a)).all()
    if len(a):
        assert not up[0] and not down[0]
    for t in np.flatnonzero(up):
        assert a[t - 1] < b[t - 1] and a[t] > b[t]
    for t in np.flatnonzero(down):
        assert a[t - 1] > b[t - 1] and a[t] < b[t]
    for t in range(1, len(a)):
        if a[t] == b[t] or a[t - 1] == b[t - 1]:
            assert not up[t] and not down[t]
