"""Indicators against TA-Lib (or `ta` for VWAP and Donchian) on the real candles.

Tolerance: relative 1e-9. Where a value can pass through or sit at zero, a relative bound
alone is meaningless (any rounding difference is an infinite relative error), so those
indicators also get a tiny absolute tolerance, stated per case with its reason.

Warmup: for every indicator the NaN prefix must be EXACTLY the registry's `warmup` and
exactly TA-Lib's/ta's NaN prefix, and the values then agree from the very first one, EMA-based
ones included, because the seeding is TA-Lib's (SMA seed, MACD's fast EMA seeded at the slow
one's first bar, Wilder seeds for RSI/ATR/ADX). Warmups (default parameters):
sma/ema/wma/bollinger/vwap/donchian: period - 1; rsi/atr/+DI/-DI/supertrend: period;
adx: 2 * period - 1; macd: slow - 1 for the line, slow + signal - 2 for signal/hist (TA-Lib
reports the line from there too); stochastic: k_period + k_smooth + d_period - 3; obv: 0.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import ta
import talib
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from apps.engine import indicators as ind
from apps.engine.indicators import INDICATORS, IndicatorError, compute
from tests.engine.indicators_data import REAL_FILES, load

RTOL = 1e-9
# Bounded oscillators (RSI, stochastic, ADX, DI) live on a 0..100 scale and sit at or near 0;
# measured absolute differences there are below 1e-12, so 1e-9 points is still ~1000x tight.
OSC_ATOL = 1e-9

FILES = pytest.mark.parametrize("name", REAL_FILES)


def _leading_nans(values: np.ndarray) -> int:
    valid = np.flatnonzero(~np.isnan(values))
    return int(valid[0]) if valid.size else len(values)


def assert_agrees(ours, ref, *, warmup: int, atol: float = 0.0) -> None:
    """Same length, NaN exactly on the first `warmup` bars in both, then rtol 1e-9 (+atol)."""
    ours = np.asarray(ours)
    ref = np.asarray(ref, dtype=np.float64)
    assert ours.dtype == np.float64
    assert ours.shape == ref.shape
    warmup = min(warmup, len(ref))  # the monthly file (156 bars) is shorter than some warmups
    assert _leading_nans(ref) == warmup, "reference warmup differs from the stated one"
    assert _leading_nans(ours) == warmup
    assert not np.isnan(ours[warmup:]).any()
    np.testing.assert_allclose(ours[warmup:], ref[warmup:], rtol=RTOL, atol=atol)


def _price_atol(close: np.ndarray) -> float:
    # MACD/histogram are differences of two EMAs of size ~price and cross zero: rounding of
    # the EMAs (a few ulps of the price) is all that differs, measured <= 1.3e-15 x price.
    return 1e-12 * float(np.max(np.abs(close)))


# ---------------------------------------------------------------- moving averages


@FILES
@pytest.mark.parametrize("period", [1, 2, 10, 30, 200])
def test_sma_is_pandas_rolling_mean_bit_for_bit(name, period):
    c = load(name).close
    ours = ind.sma(c, period)
    expected = pd.Series(c).rolling(period).mean().to_numpy()
    np.testing.assert_array_equal(ours, expected)  # exact, NaN in the same places
    assert_agrees(ours, talib.SMA(c, period), warmup=period - 1)


def test_sma_of_a_constant_window_is_exactly_that_price():
    assert (ind.sma(np.full(50, 0.1), 7)[6:] == 0.1).all()
    # ... also after a long varying stretch (a running sum would carry residue into it).
    rng = np.random.default_rng(5)
    values = np.concatenate([rng.uniform(1, 1e5, 100_000), np.full(40, 0.1)])
    for period in (3, 10, 30):
        assert (ind.sma(values, period)[-40 + period - 1 :] == 0.1).all()
    cumsum = np.cumsum(values)
    running = (cumsum[30:] - cumsum[:-30]) / 30
    assert running[-1] != 0.1  # what the cumsum-difference shortcut would give instead


@pytest.mark.parametrize("aggregate", ["mean", "sum", "max", "min"])
@pytest.mark.parametrize("use_kernel", [True, False], ids=["pandas-kernel", "public-api"])
def test_rolling_helpers_are_pandas_rolling_bit_for_bit(aggregate, use_kernel, monkeypatch):
    """The helpers call pandas' compiled kernels directly, or the public API when a pandas
    release moves them; either way the bits are `Series.rolling`'s, NaN and inf included."""
    from apps.engine.indicators import _core

    if not use_kernel:
        monkeypatch.setattr(_core, "_KERNELS", {})
    for series in _awkward_series():
        for period in (1, 2, 10, 30):
            ours = _core.rolling_window(series, period, aggregate)
            expected = getattr(pd.Series(series).rolling(period), aggregate)().to_numpy()
            np.testing.assert_array_equal(ours, expected)
            assert ours.dtype == np.float64 and ours.flags.writeable


@pytest.mark.parametrize("ignore_na", [True, False])
@pytest.mark.parametrize("use_kernel", [True, False], ids=["pandas-kernel", "public-api"])
def test_ewm_helper_is_pandas_ewm_bit_for_bit(ignore_na, use_kernel, monkeypatch):
    from apps.engine.indicators import _core

    if not use_kernel:
        monkeypatch.setattr(_core, "_EWM_KERNEL", None)
    for series in _awkward_series():
        for alpha in (1 / 14, 2 / 31, 0.5, 1.0):
            ours = _core.ewm_mean(series, alpha, ignore_na=ignore_na)
            smoothing = pd.Series(series).ewm(alpha=alpha, adjust=False, ignore_na=ignore_na)
            np.testing.assert_array_equal(ours, smoothing.mean().to_numpy())
            assert ours.dtype == np.float64 and ours.flags.writeable


def _awkward_series() -> list[np.ndarray]:
    """Prices with NaN (leading and inside), both infinities and a flat stretch, a strided
    view of them, and series too short for any window."""
    rng = np.random.default_rng(11)
    values = 20_000 * np.exp(np.cumsum(rng.normal(0, 0.002, 5_000)))
    values[:5] = np.nan
    values[10:40] = np.nan
    values[[100, 300]] = [np.inf, -np.inf]
    values[2_000:2_100] = 5.0
    return [values, values[::2], values[:3], values[:0]]


@FILES
@pytest.mark.parametrize("period", [2, 9, 20, 50, 200])
def test_ema_matches_talib_from_its_first_value(name, period):
    c = load(name).close
    assert_agrees(ind.ema(c, period), talib.EMA(c, period), warmup=period - 1)


@FILES
@pytest.mark.parametrize("period", [2, 10, 20, 100])
def test_wma_matches_talib(name, period):
    c = load(name).close
    assert_agrees(ind.wma(c, period), talib.WMA(c, period), warmup=period - 1)


# ---------------------------------------------------------------- momentum


@FILES
@pytest.mark.parametrize("period", [2, 14, 30])
def test_rsi_matches_talib(name, period):
    c = load(name).close
    assert_agrees(ind.rsi(c, period), talib.RSI(c, period), warmup=period, atol=OSC_ATOL)


@FILES
@pytest.mark.parametrize(("fast", "slow", "signal"), [(12, 26, 9), (5, 35, 5), (3, 10, 16)])
def test_macd_matches_talib(name, fast, slow, signal):
    c = load(name).close
    line, sig, hist = ind.macd(c, fast, slow, signal)
    ref = talib.MACD(c, fast, slow, signal)
    full = slow + signal - 2
    assert _leading_nans(line) == slow - 1  # our line starts as soon as both EMAs exist
    atol = _price_atol(c)
    assert_agrees(np.where(np.arange(len(c)) < full, np.nan, line), ref[0], warmup=full, atol=atol)
    assert_agrees(sig, ref[1], warmup=full, atol=atol)
    assert_agrees(hist, ref[2], warmup=full, atol=atol)


@FILES
@pytest.mark.parametrize(("k_period", "k_smooth", "d_period"), [(14, 3, 3), (5, 3, 3), (21, 1, 5)])
def test_stochastic_matches_talib_stoch_with_sma(name, k_period, k_smooth, d_period):
    d = load(name)
    k, dd = ind.stochastic(d.high, d.low, d.close, k_period, k_smooth, d_period)
    ref_k, ref_d = talib.STOCH(
        d.high, d.low, d.close, k_period, k_smooth, talib.MA_Type.SMA, d_period, talib.MA_Type.SMA
    )
    warmup = k_period + k_smooth + d_period - 3
    assert_agrees(k, ref_k, warmup=warmup, atol=OSC_ATOL)
    assert_agrees(dd, ref_d, warmup=warmup, atol=OSC_ATOL)


# ---------------------------------------------------------------- volatility


@FILES
@pytest.mark.parametrize(("period", "num_std"), [(20, 2.0), (10, 1.5), (50, 3.0)])
def test_bollinger_matches_talib(name, period, num_std):
    c = load(name).close
    ours = ind.bollinger(c, period, num_std)
    ref = talib.BBANDS(c, period, num_std, num_std, talib.MA_Type.SMA)
    for mine, theirs in zip(ours, ref, strict=True):
        assert_agrees(mine, theirs, warmup=period - 1)


@FILES
def test_bollinger_std_is_the_exact_population_std_of_each_window(name):
    c = load(name).close
    upper, middle, _ = ind.bollinger(c, 20, 1.0)
    windows = np.lib.stride_tricks.sliding_window_view(c, 20)
    exact = windows.std(axis=1)  # two-pass numpy std, ddof=0
    # Relative to the price: the std itself can be 0 (flat windows, checked below).
    np.testing.assert_allclose((upper - middle)[19:], exact, rtol=0, atol=1e-13 * c.max())
    flat = windows.max(axis=1) == windows.min(axis=1)
    assert ((upper - middle)[19:][flat] == 0.0).all()


def test_bollinger_is_flat_on_flat_gemini_hours():
    d = load("BTC-USD_1h.csv")
    upper, middle, lower = ind.bollinger(d.close, 20)
    windows = np.lib.stride_tricks.sliding_window_view(d.close, 20)
    flat = np.flatnonzero(windows.max(axis=1) == windows.min(axis=1)) + 19
    assert len(flat) == 9  # the file's fully flat 20-hour windows
    assert (upper[flat] == d.close[flat]).all()
    assert (lower[flat] == d.close[flat]).all()
    assert (middle[flat] == d.close[flat]).all()


@FILES
@pytest.mark.parametrize("period", [1, 2, 14, 50])
def test_atr_matches_talib(name, period):
    d = load(name)
    ours = ind.atr(d.high, d.low, d.close, period)
    assert_agrees(ours, talib.ATR(d.high, d.low, d.close, period), warmup=period)
    tr = ind.true_range(d.high, d.low, d.close)
    assert_agrees(tr, talib.TRANGE(d.high, d.low, d.close), warmup=1)


@FILES
@pytest.mark.parametrize("period", [5, 20, 55])
def test_donchian_matches_ta(name, period):
    d = load(name)
    frame = pd.DataFrame({"high": d.high, "low": d.low, "close": d.close})
    ref = ta.volatility.DonchianChannel(frame.high, frame.low, frame.close, window=period)
    upper, middle, lower = ind.donchian(d.high, d.low, period)
    assert_agrees(upper, ref.donchian_channel_hband(), warmup=period - 1)
    assert_agrees(middle, ref.donchian_channel_mband(), warmup=period - 1)
    assert_agrees(lower, ref.donchian_channel_lband(), warmup=period - 1)
    # ... and TA-Lib's MAX/MIN agree exactly (no arithmetic involved).
    np.testing.assert_array_equal(upper, talib.MAX(d.high, period))
    np.testing.assert_array_equal(lower, talib.MIN(d.low, period))


# ---------------------------------------------------------------- trend


@FILES
@pytest.mark.parametrize("period", [2, 14, 30])
def test_adx_and_directional_indicators_match_talib(name, period):
    d = load(name)
    plus, minus, adx = ind.dmi(d.high, d.low, d.close, period)
    assert_agrees(
        adx, talib.ADX(d.high, d.low, d.close, period), warmup=2 * period - 1, atol=OSC_ATOL
    )
    ref_plus = talib.PLUS_DI(d.high, d.low, d.close, period)
    ref_minus = talib.MINUS_DI(d.high, d.low, d.close, period)
    assert_agrees(plus, ref_plus, warmup=period, atol=OSC_ATOL)
    assert_agrees(minus, ref_minus, warmup=period, atol=OSC_ATOL)
    np.testing.assert_array_equal(ind.adx(d.high, d.low, d.close, period), adx)
    np.testing.assert_array_equal(ind.plus_di(d.high, d.low, d.close, period), plus)
    np.testing.assert_array_equal(ind.minus_di(d.high, d.low, d.close, period), minus)


# ---------------------------------------------------------------- volume


@FILES
@pytest.mark.parametrize("period", [1, 14, 48])
def test_vwap_matches_ta(name, period):
    d = load(name)
    frame = pd.DataFrame({"high": d.high, "low": d.low, "close": d.close, "volume": d.volume})
    ref = ta.volume.VolumeWeightedAveragePrice(
        frame.high, frame.low, frame.close, frame.volume, window=period
    ).volume_weighted_average_price()
    ref = ref.to_numpy(dtype=np.float64)
    ours = ind.vwap(d.high, d.low, d.close, d.volume, period)
    # A window that traded nothing has no average: ta gives 0/0 = NaN there, so do we;
    # those bars are compared as NaN == NaN, the rest to 1e-9.
    no_volume = pd.Series(d.volume).rolling(period).sum().to_numpy() == 0
    assert np.isnan(ours[no_volume]).all()
    assert np.isnan(ref[no_volume]).all()
    assert_agrees(np.where(no_volume, 0.0, ours), np.where(no_volume, 0.0, ref), warmup=period - 1)


def test_vwap_is_nan_on_the_flat_zero_volume_gemini_hours():
    d = load("BTC-USD_1h.csv")
    out = ind.vwap(d.high, d.low, d.close, d.volume, 14)
    no_volume = pd.Series(d.volume).rolling(14).sum().to_numpy() == 0
    assert no_volume.sum() > 0
    assert np.isnan(out[no_volume]).all()
    assert not np.isnan(out[13:][~no_volume[13:]]).any()


@FILES
def test_obv_matches_talib(name):
    d = load(name)
    # OBV sums signed volumes in the same order as TA-Lib, so it is expected to be exact;
    # it also crosses zero, where only an absolute bound would make sense.
    assert_agrees(ind.obv(d.close, d.volume), talib.OBV(d.close, d.volume), warmup=0)
    np.testing.assert_array_equal(ind.obv(d.close, d.volume), talib.OBV(d.close, d.volume))


# ---------------------------------------------------------------- supertrend


def reference_supertrend(high, low, close, period, multiplier):
    """Scalar Supertrend straight from the published definition (TradingView's Pine
    `ta.supertrend`, with Wilder's ATR seeded by the mean of the first `period` true ranges),
    written independently of the vectorised code. Returns (line, direction) as lists with
    None in the warmup; direction +1 = up, -1 = down (Pine's sign is the opposite)."""
    n = len(close)
    tr = [None] + [
        max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
        for i in range(1, n)
    ]
    atr = [None] * n
    if n > period:
        atr[period] = sum(tr[1 : period + 1]) / period
        for i in range(period + 1, n):
            atr[i] = (atr[i - 1] * (period - 1) + tr[i]) / period
    line, direction = [None] * n, [None] * n
    prev_upper = prev_lower = 0.0  # Pine: nz(band[1]) is 0 before the first value
    prev_st = None
    pine_dir = None
    for i in range(period, n):
        hl2 = (high[i] + low[i]) / 2
        upper = hl2 + multiplier * atr[i]
        lower = hl2 - multiplier * atr[i]
        prev_close = close[i - 1]
        lower = lower if (lower > prev_lower or prev_close < prev_lower) else prev_lower
        upper = upper if (upper < prev_upper or prev_close > prev_upper) else prev_upper
        if atr[i - 1] is None:
            pine_dir = 1
        elif prev_st == prev_upper:
            pine_dir = -1 if close[i] > upper else 1
        else:
            pine_dir = 1 if close[i] < lower else -1
        st_value = lower if pine_dir == -1 else upper
        line[i], direction[i] = st_value, -pine_dir
        prev_upper, prev_lower, prev_st = upper, lower, st_value
    return line, direction


@FILES
@pytest.mark.parametrize(("period", "multiplier"), [(10, 3.0), (7, 2.0), (20, 1.0)])
def test_supertrend_matches_the_scalar_reference(name, period, multiplier):
    d = load(name)
    line, direction = ind.supertrend(d.high, d.low, d.close, period, multiplier)
    ref_line, ref_dir = reference_supertrend(
        d.high.tolist(), d.low.tolist(), d.close.tolist(), period, multiplier
    )
    as_array = np.array([np.nan if v is None else v for v in ref_line])
    assert_agrees(line, as_array, warmup=period)
    np.testing.assert_array_equal(direction, [np.nan if v is None else float(v) for v in ref_dir])
    assert set(np.unique(direction[period:])) <= {-1.0, 1.0}


# Known values on BTC-USDT_1h.csv, Supertrend(10, 3): (timestamp, line, direction).
SUPERTREND_PINS = [
    ("2017-08-17T15:00:00Z", 4591.321, -1.0),  # first value: hl2 + 3 * ATR, downtrend
    ("2017-08-17T16:00:00Z", 4504.820900000001, -1.0),
    ("2017-08-22T17:00:00Z", 3992.9664616110163, -1.0),
    ("2017-08-22T18:00:00Z", 3651.234334493974, 1.0),  # the first turn up
    ("2019-07-09T10:00:00Z", 13033.28630232151, -1.0),
    ("2019-11-28T17:00:00Z", 7344.821643049178, 1.0),
    ("2021-06-09T23:00:00Z", 35074.10099371024, 1.0),  # the last candle
]


def test_supertrend_pinned_values():
    d = load("BTC-USDT_1h.csv")
    line, direction = ind.supertrend(d.high, d.low, d.close, 10, 3.0)
    for timestamp, value, trend in SUPERTREND_PINS:
        i = d.index_of(timestamp)
        assert line[i] == pytest.approx(value, rel=1e-12), timestamp
        assert direction[i] == trend, timestamp
    assert np.isnan(line[:10]).all()
    assert np.isnan(direction[:10]).all()
    assert direction[10] == -1.0  # the published definition starts in a downtrend
    tr = np.maximum(d.high[1:11], d.close[:10]) - np.minimum(d.low[1:11], d.close[:10])
    assert line[10] == pytest.approx((d.high[10] + d.low[10]) / 2 + 3 * tr.mean(), rel=1e-12)
    assert (np.diff(direction[10:]) != 0).sum() == 583  # trend changes over the file
    # In an uptrend the line is below the close, in a downtrend above it.
    up = direction == 1.0
    assert (line[up] <= d.close[up]).all()
    assert (line[direction == -1.0] >= d.close[direction == -1.0]).all()


# ---------------------------------------------------------------- registry / compute


def test_registry_lists_every_indicator_with_typed_parameters():
    assert set(INDICATORS) == {
        "sma", "ema", "wma", "rsi", "macd", "bollinger", "atr", "stochastic", "adx",
        "plus_di", "minus_di", "vwap", "obv", "donchian", "supertrend",
    }  # fmt: skip
    assert INDICATORS["macd"].outputs == ("macd", "signal", "hist")
    assert INDICATORS["bollinger"].outputs == ("upper", "middle", "lower")
    assert INDICATORS["sma"].outputs == ("value",)
    assert INDICATORS["supertrend"].outputs == ("line", "direction")
    assert INDICATORS["vwap"].inputs == ("high", "low", "close", "volume")
    period = INDICATORS["sma"].params[0]
    assert (period.name, period.kind, period.default, period.min, period.max) == (
        "period", "int", 20, 1, 1000,
    )  # fmt: skip
    num_std = INDICATORS["bollinger"].params[1]
    assert (num_std.kind, num_std.default, num_std.min, num_std.max) == ("float", 2.0, 0.1, 10.0)
    for spec in INDICATORS.values():
        assert spec.name and spec.description and spec.outputs
        for p in spec.params:
            assert p.min <= p.default <= p.max
    with pytest.raises(dataclasses.FrozenInstanceError):
        INDICATORS["sma"].name = "other"  # type: ignore[misc]


@pytest.mark.parametrize("name", REAL_FILES[:3])
def test_compute_with_defaults_gives_every_output_at_full_length(name):
    d = load(name)
    for spec in INDICATORS.values():
        result = compute(spec.name, {}, d.fields())
        assert tuple(result) == spec.outputs
        warmup = spec.warmup(spec.defaults())
        for values in result.values():
            assert values.dtype == np.float64
            assert values.shape == d.close.shape
            assert values.flags.writeable
            if spec.name != "vwap":  # vwap also has NaN on windows without volume
                assert _leading_nans(values) <= warmup
                assert not np.isnan(values[warmup:]).any(), spec.name
        assert max(_leading_nans(v) for v in result.values()) == warmup, spec.name


def test_compute_passes_parameters():
    d = load("BTC-USDT_1h.csv")
    out = compute("bollinger", {"period": 10, "num_std": 1.5}, d.fields())
    expected = ind.bollinger(d.close, 10, 1.5)
    for key, values in zip(("upper", "middle", "lower"), expected, strict=True):
        np.testing.assert_array_equal(out[key], values)
    np.testing.assert_array_equal(
        compute("sma", {"period": 10}, d.fields())["value"], ind.sma(d.close, 10)
    )


@pytest.mark.parametrize(
    ("name", "params", "message", "param"),
    [
        (
            "sma",
            {"lenght": 10},
            "unknown parameter 'lenght' for sma; expected one of: period",
            "lenght",
        ),
        ("sma", {"period": 0}, "period must be an integer between 1 and 1000, got 0", "period"),
        (
            "sma",
            {"period": 1001},
            "period must be an integer between 1 and 1000, got 1001",
            "period",
        ),
        (
            "sma",
            {"period": 10.5},
            "period must be an integer between 1 and 1000, got 10.5",
            "period",
        ),
        (
            "sma",
            {"period": True},
            "period must be an integer between 1 and 1000, got True",
            "period",
        ),
        (
            "sma",
            {"period": "10"},
            "period must be an integer between 1 and 1000, got '10'",
            "period",
        ),
        ("adx", {"period": 1}, "period must be an integer between 2 and 1000, got 1", "period"),
        (
            "bollinger",
            {"num_std": 0},
            "num_std must be a number between 0.1 and 10.0, got 0",
            "num_std",
        ),
        (
            "bollinger",
            {"num_std": float("nan")},
            "num_std must be a number between 0.1 and 10.0, got nan",
            "num_std",
        ),
        (
            "supertrend",
            {"multiplier": 11},
            "multiplier must be a number between 0.1 and 10.0, got 11",
            "multiplier",
        ),
        (
            "macd",
            {"fast": 26, "slow": 12},
            "fast must be less than slow for macd, got fast=26, slow=12",
            "fast",
        ),
        (
            "macd",
            {"fast": 26},
            "fast must be less than slow for macd, got fast=26, slow=26",
            "fast",
        ),
        (
            "obv",
            {"period": 3},
            "unknown parameter 'period' for obv; expected one of: (none)",
            "period",
        ),
    ],
)
def test_compute_rejects_bad_parameters_naming_them(name, params, message, param):
    d = load("ETH-BTC_5m.csv")
    with pytest.raises(IndicatorError) as excinfo:
        compute(name, params, d.fields())
    assert str(excinfo.value) == message
    assert excinfo.value.param == param
    assert excinfo.value.indicator == name


def test_unknown_indicator_and_missing_field_are_clear():
    d = load("ETH-BTC_5m.csv")
    with pytest.raises(
        IndicatorError, match=r"unknown indicator 'smaa'; expected one of: adx, atr,"
    ):
        compute("smaa", {}, d.fields())
    with pytest.raises(IndicatorError, match="atr needs the 'high' price field"):
        compute("atr", {}, {"close": d.close})
    with pytest.raises(IndicatorError, match="same length"):
        ind.atr(d.high, d.low[:-1], d.close)
    with pytest.raises(IndicatorError, match="one-dimensional"):
        ind.sma(np.ones((3, 3)), 2)
    with pytest.raises(IndicatorError, match="period must be an integer >= 1, got 0"):
        ind.ema(d.close, 0)


def test_inputs_are_not_modified():
    d = load("BTC-USD_1h.csv")  # the arrays are read-only: any write would raise
    for spec in INDICATORS.values():
        compute(spec.name, {}, d.fields())


# ---------------------------------------------------------------- edge cases / properties


def test_short_series_are_all_nan_and_keep_their_length():
    short = np.array([1.0, 2.0, 3.0])
    for spec in INDICATORS.values():
        fields = dict.fromkeys(("open", "high", "low", "close", "volume"), short)
        params = {p.name: p.default for p in spec.params}
        for values in compute(spec.name, params, fields).values():
            assert values.shape == (3,)
            if spec.name != "obv":
                assert np.isnan(values).all(), spec.name
    assert ind.sma(np.array([]), 3).shape == (0,)
    assert ind.supertrend([], [], [])[0].shape == (0,)


def test_ema_skips_leading_nans_so_it_can_smooth_another_indicator():
    c = load("BTC-USDT_1h.csv").close
    smoothed = ind.ema(ind.sma(c, 10), 5)
    assert _leading_nans(smoothed) == 9 + 4
    np.testing.assert_allclose(smoothed[13:], talib.EMA(talib.SMA(c, 10), 5)[13:], rtol=RTOL)


prices = st.floats(min_value=1e-8, max_value=1e9, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(value=prices, n=st.integers(1, 300), period=st.integers(1, 50))
def test_moving_averages_of_a_constant_series_are_exactly_that_constant(value, n, period):
    values = np.full(n, value)
    assert (ind.sma(values, period)[period - 1 :] == value).all()
    assert (ind.ema(values, period)[period - 1 :] == value).all()
    upper, _, lower = ind.bollinger(values, period)
    assert (upper[period - 1 :] == value).all()
    assert (lower[period - 1 :] == value).all()
    # WMA divides a weighted sum, so only approximately (1 ulp-level) the constant.
    np.testing.assert_allclose(ind.wma(values, period)[period - 1 :], value, rtol=1e-14)


@settings(max_examples=100, deadline=None)
@given(
    data=st.lists(prices, min_size=60, max_size=200),
    tail=prices,
    period=st.integers(1, 20),
)
def test_sma_is_exact_on_a_flat_stretch_after_any_history(data, tail, period):
    values = np.array(data + [tail] * 25)
    assert (ind.sma(values, period)[-25 + period - 1 :] == tail).all()


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_valid_parameters_give_full_length_outputs_with_the_stated_warmup(data):
    d = load("BNB-USDT_1d.csv")
    name = data.draw(st.sampled_from(sorted(INDICATORS)))
    spec = INDICATORS[name]
    params = {}
    for p in spec.params:
        if p.kind == "int":
            params[p.name] = data.draw(st.integers(int(p.min), min(int(p.max), 300)))
        else:
            params[p.name] = data.draw(st.floats(p.min, p.max))
    if name == "macd":
        assume(params["fast"] < params["slow"])
    result = compute(name, params, d.fields())
    warmup = spec.warmup(params)
    first_valid = max(_leading_nans(v) for v in result.values())
    assert first_valid == min(warmup, len(d.close))
    for values in result.values():
        assert values.shape == d.close.shape
