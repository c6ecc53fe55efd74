"""Gap detection in SQL, pure resampling against pandas, and the resample service."""

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from apps.common.errors import ApplicationError
from apps.engine.candles import read_csv
from apps.engine.timeframes import TimeframeError, check_resample, parse_timeframe, resample
from apps.market.models import CandleSeries
from apps.market.selectors import candle_coverage_list, candle_series_coverage, candles_load
from apps.market.services import candles_import_csv, candles_resample
from tests.apps.market.conftest import DATA


def h(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_gaps_in_btc_1h_are_the_8_gaps_and_16_candles_the_data_readme_lists(btc_1h):
    coverage = candle_series_coverage(series=CandleSeries.objects.get())
    assert (coverage.first, coverage.last) == (h("2017-08-17T05:00"), h("2021-06-09T23:00"))
    assert coverage.candles == 33_411
    assert (len(coverage.gaps), coverage.missing, coverage.expected) == (8, 16, 33_427)
    assert [(g.start, g.end, g.missing) for g in coverage.gaps] == [
        (h("2017-09-22T20:00"), h("2017-09-22T23:00"), 4),
        (h("2020-11-30T06:00"), h("2020-11-30T06:00"), 1),
        (h("2020-12-21T15:00"), h("2020-12-21T17:00"), 3),
        (h("2020-12-25T02:00"), h("2020-12-25T02:00"), 1),
        (h("2021-02-11T04:00"), h("2021-02-11T04:00"), 1),
        (h("2021-03-06T02:00"), h("2021-03-06T02:00"), 1),
        (h("2021-04-20T02:00"), h("2021-04-20T03:00"), 2),
        (h("2021-04-25T05:00"), h("2021-04-25T07:00"), 3),
    ]
    # Independently: every missing hour is absent from the file, and nothing else is.
    times = pd.DatetimeIndex(read_csv(DATA / "BTC-USDT_1h.csv").time)
    full = pd.date_range(times[0], times[-1], freq="1h")
    assert len(full.difference(times)) == 16


def test_coverage_of_the_other_real_files(db):
    for name, timeframe in [
        ("BNB-USDT_1h.csv", "1h"),
        ("ETH-USDT_1d.csv", "1d"),
        ("BTC-USDT_5m.csv", "5m"),
    ]:
        candles_import_csv(
            path=DATA / name,
            exchange="binance",
            symbol=name[:8].replace("-", "/"),
            timeframe=timeframe,
        )
    found = {
        (c.series.symbol, c.series.timeframe): (len(c.gaps), c.missing)
        for c in candle_coverage_list()
    }
    assert found == {
        ("BNB/USDT", "1h"): (7, 12),
        ("ETH/USDT", "1d"): (0, 0),
        ("BTC/USDT", "5m"): (0, 0),
    }


def pandas_daily(path) -> pd.DataFrame:
    frame = pd.read_csv(path, parse_dates=["timestamp"]).set_index("timestamp")
    daily = frame.resample("1D").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    counts = frame["close"].resample("1D").count()
    return daily[counts == 24]


def test_resample_1h_to_1d_equals_pandas_on_complete_days():
    candles = read_csv(DATA / "BTC-USDT_1h.csv")
    daily = resample(candles, parse_timeframe("1h"), parse_timeframe("1d"))
    expected = pandas_daily(DATA / "BTC-USDT_1h.csv")
    assert len(daily) == len(expected) == 1384  # days with a gap and the partial first day drop
    assert np.array_equal(daily.time, expected.index.tz_convert(None).to_numpy("datetime64[ns]"))
    for name in ("open", "high", "low", "close"):
        assert np.array_equal(daily.field(name), expected[name].to_numpy()), name
    np.testing.assert_allclose(daily.volume, expected["volume"].to_numpy(), rtol=1e-12)


def test_resample_weeks_open_on_monday_and_months_on_the_first():
    daily = read_csv(DATA / "BTC-USDT_1d.csv")
    weekly = resample(daily, parse_timeframe("1d"), parse_timeframe("1w"))
    assert set(pd.DatetimeIndex(weekly.time).day_name()) == {"Monday"}
    first_week = (daily.time >= weekly.time[0]) & (
        daily.time < weekly.time[0] + np.timedelta64(7, "D")
    )
    assert (
        weekly.high[0] == daily.high[first_week].max()
        and weekly.close[0] == daily.close[first_week][-1]
    )
    monthly = resample(daily, parse_timeframe("1d"), parse_timeframe("1M"))
    assert set(pd.DatetimeIndex(monthly.time).day) == {1}
    assert pd.Timestamp(monthly.time[0]) == pd.Timestamp("2017-09-01")  # August 2017 is partial


def test_impossible_resamples_are_refused():
    with pytest.raises(TimeframeError, match="cannot resample 3d candles to 1w"):
        check_resample(parse_timeframe("3d"), parse_timeframe("1w"))
    with pytest.raises(TimeframeError, match="cannot resample 4h candles to 1h"):
        check_resample(parse_timeframe("4h"), parse_timeframe("1h"))
    with pytest.raises(TimeframeError, match="'7x' is not a timeframe"):
        parse_timeframe("7x")


@pytest.mark.parametrize(
    ("code", "offset", "seconds"),
    [
        ("5m", "5min", 300),
        ("1h", "1h", 3600),
        ("1d", "1D", 86_400),
        ("1w", "1W-MON", 604_800),
        ("1M", "1MS", 0),
    ],
)
def test_timeframes_parse_to_durations_and_pandas_offsets(code, offset, seconds):
    timeframe = parse_timeframe(code)
    assert (timeframe.pandas_offset, timeframe.seconds) == (offset, seconds)


def test_the_resample_service_stores_the_daily_series_idempotently(btc_1h):
    result = candles_resample(
        exchange="binance", symbol="BTC/USDT", source_timeframe="1h", target_timeframe="1d"
    )
    assert (result.inserted, result.series.timeframe) == (1384, "1d")
    stored = candles_load(exchange="binance", symbol="BTC/USDT", timeframe="1d")
    assert np.array_equal(
        stored.close,
        resample(
            read_csv(DATA / "BTC-USDT_1h.csv"), parse_timeframe("1h"), parse_timeframe("1d")
        ).close,
    )
    again = candles_resample(
        exchange="binance", symbol="BTC/USDT", source_timeframe="1h", target_timeframe="1d"
    )
    assert (again.inserted, again.already_present) == (0, 1384)
    with pytest.raises(ApplicationError, match="no binance BTC/USDT 4h candles"):
        candles_resample(
            exchange="binance", symbol="BTC/USDT", source_timeframe="4h", target_timeframe="1d"
        )
