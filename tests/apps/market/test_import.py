"""CSV import into the candle store: counts, idempotence, exact round trip, all-or-nothing."""

from datetime import UTC, datetime

import numpy as np
import pytest

from apps.audit.models import AuditEvent
from apps.common.errors import ApplicationError
from apps.engine.candles import CandleArrays, read_csv
from apps.market.models import Candle, CandleSeries
from apps.market.selectors import candles_load
from apps.market.services import candles_import_csv, candles_store
from tests.apps.market.conftest import DATA

FIELDS = ("time", "open", "high", "low", "close", "volume")


def same(a, b) -> bool:
    return all(np.array_equal(getattr(a, name), getattr(b, name)) for name in FIELDS)


def test_import_counts_equal_the_csv_rows_and_are_audited(btc_1h):
    rows = sum(1 for _ in (DATA / "BTC-USDT_1h.csv").open()) - 1
    assert rows == 33_411
    assert (btc_1h.rows, btc_1h.inserted, btc_1h.already_present) == (rows, rows, 0)
    series = CandleSeries.objects.get()
    assert (series.exchange, series.symbol, series.timeframe) == ("binance", "BTC/USDT", "1h")
    assert Candle.objects.filter(series=series).count() == rows
    event = AuditEvent.objects.get(event_type="market.candles_imported")
    assert event.data["inserted"] == rows
    assert event.data["source"] == "csv:BTC-USDT_1h.csv"
    assert event.target_id == str(series.pk)


def test_reimport_inserts_nothing(btc_1h):
    again = candles_import_csv(
        path=DATA / "BTC-USDT_1h.csv", exchange="binance", symbol="BTC/USDT", timeframe="1h"
    )
    assert (again.inserted, again.already_present, again.differing) == (0, 33_411, 0)
    assert Candle.objects.count() == 33_411


def test_overlapping_import_inserts_only_new_candles_and_keeps_stored_values(db):
    candles = read_csv(DATA / "BNB-USDT_1h.csv")
    key = {"exchange": "binance", "symbol": "BNB/USDT", "timeframe": "1h", "source": "t"}
    candles_store(candles=candles.head(5000), **key)
    close = candles.close.copy()
    assert close[10] != candles.high[10]
    close[10] = candles.high[10]  # a different value for an already stored candle
    changed = CandleArrays(
        candles.time, candles.open, candles.high, candles.low, close, candles.volume
    )
    result = candles_store(candles=changed, **key)
    assert (result.inserted, result.already_present, result.differing) == (2477, 5000, 1)
    stored = candles_load(exchange="binance", symbol="BNB/USDT", timeframe="1h")
    assert len(stored) == 7477
    assert stored.close[10] == read_csv(DATA / "BNB-USDT_1h.csv").close[10]


@pytest.mark.parametrize("name", ["BTC-USDT_1h.csv", "ETH-BTC_5m.csv", "BTC-USD_1h.csv"])
def test_stored_values_round_trip_exactly(db, name):
    timeframe = name.split("_")[1].removesuffix(".csv")
    candles_import_csv(path=DATA / name, exchange="binance", symbol="X/Y", timeframe=timeframe)
    assert same(
        candles_load(exchange="binance", symbol="X/Y", timeframe=timeframe), read_csv(DATA / name)
    )


def test_load_with_a_time_range_returns_exactly_those_bars(btc_1h):
    start, end = datetime(2020, 12, 21, 10, tzinfo=UTC), datetime(2020, 12, 22, tzinfo=UTC)
    got = candles_load(exchange="binance", symbol="BTC/USDT", timeframe="1h", start=start, end=end)
    every = read_csv(DATA / "BTC-USDT_1h.csv")
    lo, hi = np.datetime64("2020-12-21T10:00", "ns"), np.datetime64("2020-12-22T00:00", "ns")
    mask = (every.time >= lo) & (every.time < hi)
    assert len(got) == int(mask.sum()) == 11  # 14 hours minus the 15:00-17:00 gap
    assert np.array_equal(got.time, every.time[mask])
    assert np.array_equal(got.close, every.close[mask])
    only_start = candles_load(exchange="binance", symbol="BTC/USDT", timeframe="1h", start=start)
    assert np.array_equal(only_start.time, every.time[every.time >= lo])


def test_unknown_series_or_empty_range_loads_nothing(btc_1h):
    assert len(candles_load(exchange="binance", symbol="BTC/USDT", timeframe="4h")) == 0
    early = datetime(2010, 1, 1, tzinfo=UTC)
    got = candles_load(exchange="binance", symbol="BTC/USDT", timeframe="1h", end=early)
    assert len(got) == 0 and got.time.dtype == np.dtype("datetime64[ns]")


def corrupt(tmp_path, edit) -> str:
    lines = (DATA / "BTC-USDT_1h.csv").read_text().splitlines()[:200]
    edit(lines)
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def set_cell(lines, row, column, value):
    cells = lines[row].split(",")
    cells[column] = value
    lines[row] = ",".join(cells)


@pytest.mark.parametrize(
    ("edit", "timeframe", "expected"),
    [
        (
            lambda ls: set_cell(ls, 57, 4, "43x1.5"),
            "1h",
            "row 57 (line 58), column 'close': '43x1.5' is not a number",
        ),
        (
            lambda ls: set_cell(ls, 57, 2, ""),
            "1h",
            "row 57 (line 58), column 'high': value is missing",
        ),
        (
            lambda ls: ls.__setitem__(0, "timestamp,open,high,low,close"),
            "1h",
            "missing column(s) volume",
        ),
        (
            lambda ls: ls.insert(101, ls.pop(100)),
            "1h",
            "row 101 (line 102), column 'timestamp': 2017-08-21T08:00:00Z is not after the "
            "previous row's 2017-08-21T09:00:00Z",
        ),
        (
            lambda ls: set_cell(ls, 30, 0, "2017-08-18T10:30:00Z"),
            "1h",
            "row 30: 2017-08-18T10:30:00Z is not the open time of a 1h candle",
        ),
        (lambda ls: None, "4h", "row 1: 2017-08-17T05:00:00Z is not the open time of a 4h candle"),
        (
            lambda ls: set_cell(ls, 12, 1, "-5"),
            "1h",
            "row 12 (2017-08-17T16:00:00Z): open must be above 0",
        ),
        (
            lambda ls: set_cell(ls, 9, 2, "4430"),
            "1h",
            "row 9 (2017-08-17T13:00:00Z): high is below open or close",
        ),
        (
            lambda ls: set_cell(ls, 3, 0, "yesterday"),
            "1h",
            "row 3 (line 4), column 'timestamp': 'yesterday' is not an ISO-8601",
        ),
    ],
    ids=[
        "bad-number",
        "empty-cell",
        "missing-column",
        "unsorted",
        "misaligned",
        "wrong-timeframe",
        "negative",
        "high-below-close",
        "bad-time",
    ],
)
def test_a_corrupt_csv_names_the_problem_and_writes_nothing(
    tmp_path, db, edit, timeframe, expected
):
    path = corrupt(tmp_path, edit)
    with pytest.raises(ApplicationError) as caught:
        candles_import_csv(path=path, exchange="binance", symbol="BTC/USDT", timeframe=timeframe)
    assert expected in caught.value.message
    assert caught.value.message.startswith("bad.csv: ")
    assert caught.value.field == "file"
    assert not CandleSeries.objects.exists()
    assert not Candle.objects.exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("key", "field", "message"),
    [
        ({"exchange": "Bin ance"}, "exchange", "is not a ccxt exchange id"),
        ({"symbol": "BTCUSDT"}, "symbol", "is not in ccxt form BASE/QUOTE"),
        ({"timeframe": "1hour"}, "timeframe", "'1hour' is not a timeframe"),
    ],
)
def test_bad_series_keys_are_refused_by_field(db, key, field, message):
    args = {"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1h", **key}
    with pytest.raises(ApplicationError) as caught:
        candles_import_csv(path=DATA / "BTC-USDT_1h.csv", **args)
    assert caught.value.field == field
    assert message in caught.value.message
    assert not Candle.objects.exists()
