"""Candle store speed: COPY import and numpy read of 1M candles, against a naive ORM baseline.

Generates synthetic 1m candles (a random walk; the store does not care about realism), then
times, on a throwaway test database (`<your database>_candles_bench`, created and dropped here, so
real data is never touched):

- `candles_store` (binary COPY; a range already partly stored goes through a temp table and
  INSERT ... ON CONFLICT DO NOTHING) of 1M
  candles from arrays, and `candles_import_csv` of the same candles from a CSV file (CSV
  parsing and validation included), into separate series;
- the same import again (everything already present);
- `candles_load` of all 1M candles into numpy (binary COPY TO STDOUT);
- the SQL gap scan (`candle_series_coverage`) on 1M rows;
- the baseline at 100k candles: ORM `bulk_create` and `values_list` into numpy, against the
  COPY paths on the same 100k, and prints the speed ratios.

A benchmark, not a test: it prints numbers and asserts only that the data round-trips.

Usage: python bench/candles_io.py [--candles 1000000] [--baseline 100000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from apps.engine.candles import CandleArrays  # noqa: E402
from apps.market.models import Candle, CandleSeries  # noqa: E402
from apps.market.selectors import candle_series_coverage, candles_load  # noqa: E402
from apps.market.services import candles_import_csv, candles_store  # noqa: E402

FIELDS = ("open", "high", "low", "close", "volume")


def synthetic(n: int, seed: int = 7) -> CandleArrays:
    rng = np.random.default_rng(seed)
    start = np.datetime64("2019-01-01T00:00:00", "ns")
    time_ = start + np.arange(n, dtype=np.int64) * np.timedelta64(60, "s")
    close = np.round(20_000 * np.exp(np.cumsum(rng.normal(0, 0.0008, n))), 2)
    open_ = np.r_[close[0], close[:-1]]
    wick = np.abs(rng.normal(0, 0.0005, n)) * close
    high = np.round(np.maximum(open_, close) + wick, 2)
    low = np.round(np.minimum(open_, close) - wick, 2)
    volume = np.round(rng.gamma(2.0, 5.0, n), 4)
    return CandleArrays(time_, open_, high, low, close, volume)


def timed(label: str, rows: int, func: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = func()
    seconds = time.perf_counter() - started
    print(f"  {label:<58} {seconds:8.3f} s  {rows / seconds:>12,.0f} rows/s")
    return seconds, value


def same(a: CandleArrays, b: CandleArrays) -> bool:
    return all(np.array_equal(getattr(a, name), getattr(b, name)) for name in ("time", *FIELDS))


def orm_bulk_create(candles: CandleArrays, symbol: str) -> None:
    with transaction.atomic():
        series = CandleSeries.objects.create(exchange="bench", symbol=symbol, timeframe="1m")
        times = pd.DatetimeIndex(candles.time).tz_localize("UTC").to_pydatetime()
        columns = [candles.field(name).tolist() for name in FIELDS]
        Candle.objects.bulk_create(
            (
                Candle(series=series, open_time=t, open=o, high=h, low=lo, close=c, volume=v)
                for t, o, h, lo, c, v in zip(times, *columns, strict=True)
            ),
            batch_size=5000,
            ignore_conflicts=True,
        )


def orm_values_list(symbol: str) -> CandleArrays:
    rows = list(
        Candle.objects.filter(series__exchange="bench", series__symbol=symbol)
        .order_by("open_time")
        .values_list("open_time", *FIELDS)
    )
    columns = list(zip(*rows, strict=True))
    times = pd.DatetimeIndex(columns[0]).tz_convert("UTC").tz_localize(None)
    return CandleArrays(
        times.to_numpy(dtype="datetime64[ns]"),
        *(np.asarray(column, dtype=np.float64) for column in columns[1:]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candles", type=int, default=1_000_000)
    parser.add_argument("--baseline", type=int, default=100_000)
    args = parser.parse_args()
    n, m = args.candles, args.baseline

    setup_test_environment()
    real_name = connection.settings_dict["NAME"]
    # Not pytest's test_<name>: a bench run beside a test run must not clobber it.
    connection.settings_dict.setdefault("TEST", {})["NAME"] = f"{real_name}_candles_bench"
    test_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    print(f"scratch database {test_name} (real database {real_name} untouched)")
    try:
        candles = synthetic(n)
        with tempfile.TemporaryDirectory() as directory:
            csv_path = Path(directory) / "BENCH_1m.csv"
            frame = pd.DataFrame({"timestamp": pd.DatetimeIndex(candles.time).tz_localize("UTC")})
            frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
            for name in FIELDS:
                frame[name] = candles.field(name)
            frame.to_csv(csv_path, index=False)

            print(f"\n{n:,} synthetic 1m candles")
            store = {"exchange": "bench", "timeframe": "1m", "source": "bench"}
            copy_import, result = timed(
                "import from arrays (binary COPY, new range)",
                n,
                lambda: candles_store(symbol="ARR/USDT", candles=candles, **store),
            )
            assert result.inserted == n
            _, result = timed(
                "import from CSV (read_csv, checks, COPY, INSERT)",
                n,
                lambda: candles_import_csv(
                    path=csv_path, exchange="bench", symbol="CSV/USDT", timeframe="1m"
                ),
            )
            assert result.inserted == n
            _, result = timed(
                "re-import (temp table + INSERT ON CONFLICT, all present)",
                n,
                lambda: candles_store(symbol="ARR/USDT", candles=candles, **store),
            )
            assert result.inserted == 0 and result.already_present == n
        copy_read, loaded = timed(
            "read into numpy (binary COPY TO STDOUT)",
            n,
            lambda: candles_load(exchange="bench", symbol="ARR/USDT", timeframe="1m"),
        )
        assert same(loaded, candles), "round trip changed the candles"
        series = CandleSeries.objects.get(exchange="bench", symbol="ARR/USDT")
        timed(
            "coverage + gap scan (lead() over the pk index)",
            n,
            lambda: candle_series_coverage(series=series),
        )

        print(f"\n{m:,} candles: naive ORM against the COPY paths")
        small = synthetic(m, seed=11)
        orm_write, _ = timed(
            "ORM bulk_create(batch_size=5000)", m, lambda: orm_bulk_create(small, "ORM/USDT")
        )
        copy_write, _ = timed(
            "COPY import", m, lambda: candles_store(symbol="CPY/USDT", candles=small, **store)
        )
        orm_read, orm_loaded = timed(
            "ORM values_list -> numpy", m, lambda: orm_values_list("ORM/USDT")
        )
        copy_read_small, copy_loaded = timed(
            "COPY read -> numpy",
            m,
            lambda: candles_load(exchange="bench", symbol="CPY/USDT", timeframe="1m"),
        )
        assert same(orm_loaded, small) and same(copy_loaded, small)
        print(
            f"\nspeed ratio at {m:,} candles: import {orm_write / copy_write:.1f}x, "
            f"read {orm_read / copy_read_small:.1f}x faster than the ORM"
        )
        print(f"1M-scale: import {n / copy_import:,.0f} rows/s, read {n / copy_read:,.0f} rows/s")
    finally:
        connection.creation.destroy_test_db(real_name, verbosity=0)


if __name__ == "__main__":
    main()
