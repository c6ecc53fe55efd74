"""Writes to the candle store: CSV import, storing candles from any source, resampling, demo data.

Every import goes through `candles_store`: the candles are validated first (a bad input writes
nothing), streamed into a temporary table with a binary COPY, then moved with
`INSERT ... ON CONFLICT DO NOTHING`, so importing the same candles again inserts nothing.
Stored candles are never overwritten: a closed candle is history, and an import whose values
differ from what is stored reports how many differ instead of silently rewriting them.

Exchange download (ccxt `fetch_ohlcv`) plugs in here: it pages through `fetch_ohlcv` from the
last stored candle (`selectors.candle_series_coverage` gives the resume point and the gaps to
repair), turns each page into `CandleArrays` and hands it to `candles_store` with
`source="ccxt:<exchange>"`, so it inherits validation, idempotence and auditing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection, transaction

from apps.audit.services import audit_record
from apps.common.errors import ApplicationError
from apps.common.timefmt import utc_text
from apps.engine.candles import CSV_COLUMNS, CandleArrays, CandleDataError, read_csv
from apps.engine.timeframes import Timeframe, TimeframeError, parse_timeframe, resample
from apps.market import pgcopy
from apps.market.models import CandleSeries

EXCHANGE_RE = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
SYMBOL_RE = re.compile(r"^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}(:[A-Z0-9]{1,20})?$")
PRICE_FIELDS = ("open", "high", "low", "close")
ANALYZE_AFTER_ROWS = 50_000

# The shipped demo files (data/candles/README.md): file name -> (exchange, symbol, timeframe).
DEMO_FILES = {
    "BTC-USDT_1h.csv": ("binance", "BTC/USDT", "1h"),
    "ETH-USDT_1d.csv": ("binance", "ETH/USDT", "1d"),
    "BNB-USDT_1h.csv": ("binance", "BNB/USDT", "1h"),
    "BTC-USDT_5m.csv": ("binance", "BTC/USDT", "5m"),
}


@dataclass(frozen=True)
class ImportResult:
    series: CandleSeries
    rows: int
    inserted: int
    already_present: int
    differing: int

    def summary(self) -> str:
        text = (
            f"{self.series}: {self.rows} candles read, {self.inserted} inserted, "
            f"{self.already_present} already present"
        )
        if self.differing:
            text += f" ({self.differing} of those differ from the stored values, kept as stored)"
        return text


def timeframe_parse(*, timeframe: str) -> Timeframe:
    try:
        return parse_timeframe(timeframe)
    except TimeframeError as exc:
        raise ApplicationError(str(exc), field="timeframe") from exc


def series_key_clean(*, exchange: str, symbol: str, timeframe: str) -> tuple[str, str, Timeframe]:
    """Normalise and validate (exchange, symbol, timeframe); errors name the field."""
    exchange, symbol = exchange.strip().lower(), symbol.strip().upper()
    if not EXCHANGE_RE.match(exchange):
        raise ApplicationError(
            f"exchange {exchange!r} is not a ccxt exchange id (lower case, e.g. binance)",
            field="exchange",
        )
    if not SYMBOL_RE.match(symbol):
        raise ApplicationError(
            f"symbol {symbol!r} is not in ccxt form BASE/QUOTE, e.g. BTC/USDT", field="symbol"
        )
    return exchange, symbol, timeframe_parse(timeframe=timeframe)


def candles_check(*, candles: CandleArrays, timeframe: Timeframe) -> None:
    """Raise ApplicationError naming the first bad row: candles must be sorted, finite, open
    on the timeframe's grid, with positive prices, volume >= 0 and low <= open, close <= high.
    Rows are numbered from 1 (the first candle; line 2 of a CSV with a header)."""
    try:
        candles.validate()
    except CandleDataError as exc:
        raise ApplicationError(str(exc), field="file") from exc
    bad = timeframe.first_misaligned(candles.time)
    if bad is not None:
        raise ApplicationError(
            f"row {bad + 1}: {utc_text(candles.time[bad])} is not the open time of a {timeframe} "
            f"candle (is the timeframe right?)",
            field="file",
        )
    problems = [
        *[(candles.field(name) <= 0, f"{name} must be above 0") for name in PRICE_FIELDS],
        (candles.volume < 0, "volume must not be negative"),
        (candles.high < np.maximum(candles.open, candles.close), "high is below open or close"),
        (candles.low > np.minimum(candles.open, candles.close), "low is above open or close"),
    ]
    for failing, message in problems:
        rows = np.flatnonzero(failing)
        if len(rows):
            row = int(rows[0])
            raise ApplicationError(
                f"row {row + 1} ({utc_text(candles.time[row])}): {message}", field="file"
            )


def candles_read_csv(*, path: str | Path, timeframe: Timeframe, name: str = "") -> CandleArrays:
    """Read and check a candle CSV; a problem raises ApplicationError naming row and column."""
    name = name or Path(path).name
    try:
        candles = read_csv(path)
    except CandleDataError as exc:
        raw = str(exc).replace(f"cannot read {path}", "cannot read the file")
        message = _diagnose_csv(path) or raw.replace(f"{path}: ", "")
        raise ApplicationError(f"{name}: {message}", field="file") from exc
    try:
        candles_check(candles=candles, timeframe=timeframe)
    except ApplicationError as exc:
        raise ApplicationError(f"{name}: {exc.message}", field="file") from exc
    return candles


def _diagnose_csv(path: str | Path) -> str | None:
    """Find the first unreadable cell or out-of-order row, for a precise error message."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError):
        return None
    if any(column not in frame.columns for column in CSV_COLUMNS):
        return None
    for column in CSV_COLUMNS[1:]:
        text = frame[column].astype(str).str.strip()
        bad = np.flatnonzero(pd.to_numeric(text, errors="coerce").isna().to_numpy())
        if len(bad):
            row = int(bad[0])
            value = text.iloc[row]
            what = "value is missing" if value == "" else f"{value!r} is not a number"
            return f"row {row + 1} (line {row + 2}), column {column!r}: {what}"
    times = pd.to_datetime(frame["timestamp"], utc=True, errors="coerce", format="ISO8601")
    bad = np.flatnonzero(times.isna().to_numpy())
    if len(bad):
        row = int(bad[0])
        value = frame["timestamp"].iloc[row]
        return (
            f"row {row + 1} (line {row + 2}), column 'timestamp': {value!r} is not an "
            f"ISO-8601 UTC time such as 2021-01-01T00:00:00Z"
        )
    ns = times.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    bad = np.flatnonzero(np.diff(ns) <= 0)
    if len(bad):
        row = int(bad[0]) + 1
        return (
            f"row {row + 1} (line {row + 2}), column 'timestamp': {frame['timestamp'].iloc[row]} "
            f"is not after the previous row's {frame['timestamp'].iloc[row - 1]}; rows must be "
            f"in increasing time order without duplicates"
        )
    return None


def candle_series_get_or_create(*, exchange: str, symbol: str, timeframe: str) -> CandleSeries:
    exchange, symbol, parsed = series_key_clean(
        exchange=exchange, symbol=symbol, timeframe=timeframe
    )
    series, _ = CandleSeries.objects.get_or_create(
        exchange=exchange, symbol=symbol, timeframe=parsed.code
    )
    return series


def candles_store(
    *,
    exchange: str,
    symbol: str,
    timeframe: str,
    candles: CandleArrays,
    source: str,
    acting_user: Any = None,
    actor_label: str = "",
    event_type: str = "market.candles_imported",
    extra: dict[str, Any] | None = None,
) -> ImportResult:
    """Validate and bulk-insert candles; candles already stored are left as they are.

    One transaction with its audit event: all candles are stored or none.
    """
    exchange, symbol, parsed = series_key_clean(
        exchange=exchange, symbol=symbol, timeframe=timeframe
    )
    candles_check(candles=candles, timeframe=parsed)
    with transaction.atomic():
        series, _ = CandleSeries.objects.get_or_create(
            exchange=exchange, symbol=symbol, timeframe=parsed.code
        )
        # One import per series at a time (see _copy_insert); other series are not blocked.
        CandleSeries.objects.select_for_update().filter(pk=series.pk).exists()
        inserted, differing = _copy_insert(series_id=series.pk, candles=candles)
        if inserted >= ANALYZE_AFTER_ROWS:
            # Fresh statistics, or the planner reads a big new range with a sort.
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE market_candle")
        result = ImportResult(
            series=series,
            rows=len(candles),
            inserted=inserted,
            already_present=len(candles) - inserted,
            differing=differing,
        )
        audit_record(
            event_type=event_type,
            actor=acting_user,
            actor_label=actor_label,
            target=series,
            data={
                "exchange": exchange,
                "symbol": symbol,
                "timeframe": parsed.code,
                "source": source,
                "rows": result.rows,
                "inserted": result.inserted,
                "already_present": result.already_present,
                "differing": result.differing,
                "first": utc_text(candles.time[0]),
                "last": utc_text(candles.time[-1]),
                **(extra or {}),
            },
        )
    return result


def _copy_insert(*, series_id: int, candles: CandleArrays) -> tuple[int, int]:
    """Insert what is new, by binary COPY; returns (inserted, differing).

    The caller holds the series row lock, so no other import of this series runs meanwhile.
    When nothing is stored in the candles' time range (a first import, or an append), the
    stream goes straight into market_candle. Otherwise it goes into a temporary table and
    `INSERT ... ON CONFLICT DO NOTHING` keeps what is stored (about 2x slower per row).
    """
    first, last = (pd.Timestamp(candles.time[i], tz="UTC").to_pydatetime() for i in (0, -1))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM market_candle WHERE series_id = %s "
            "AND open_time BETWEEN %s AND %s)",
            [series_id, first, last],
        )
        if not cursor.fetchone()[0]:
            with cursor.copy(
                "COPY market_candle (series_id, open_time, open, high, low, close, volume) "
                "FROM STDIN (FORMAT binary)"
            ) as copy:
                copy.write(pgcopy.encode(candles, series_id=series_id))
            return len(candles), 0
        cursor.execute("DROP TABLE IF EXISTS pg_temp.market_candle_incoming")
        cursor.execute(
            "CREATE TEMP TABLE market_candle_incoming (open_time timestamptz NOT NULL, "
            "open float8 NOT NULL, high float8 NOT NULL, low float8 NOT NULL, "
            "close float8 NOT NULL, volume float8 NOT NULL) ON COMMIT DROP"
        )
        with cursor.copy(
            "COPY market_candle_incoming (open_time, open, high, low, close, volume) "
            "FROM STDIN (FORMAT binary)"
        ) as copy:
            copy.write(pgcopy.encode(candles))
        cursor.execute(
            "INSERT INTO market_candle (series_id, open_time, open, high, low, close, volume) "
            "SELECT %s, open_time, open, high, low, close, volume FROM market_candle_incoming "
            "ON CONFLICT (series_id, open_time) DO NOTHING",
            [series_id],
        )
        inserted = cursor.rowcount
        differing = 0
        if inserted < len(candles):
            # Rows just inserted equal their source, so only pre-existing rows can differ.
            cursor.execute(
                "SELECT count(*) FROM market_candle_incoming i JOIN market_candle c "
                "ON c.series_id = %s AND c.open_time = i.open_time "
                "WHERE (c.open, c.high, c.low, c.close, c.volume) "
                "IS DISTINCT FROM (i.open, i.high, i.low, i.close, i.volume)",
                [series_id],
            )
            differing = cursor.fetchone()[0]
        cursor.execute("DROP TABLE pg_temp.market_candle_incoming")
    return inserted, differing


def candles_import_csv(
    *,
    path: str | Path,
    exchange: str,
    symbol: str,
    timeframe: str,
    acting_user: Any = None,
    actor_label: str = "",
    name: str = "",
) -> ImportResult:
    """Import a `timestamp,open,high,low,close,volume` CSV (ISO-8601 UTC open times).

    The whole file is read and checked before anything is written; `name` is how the file is
    called in messages (an upload's original name rather than its temporary path).
    """
    _, _, parsed = series_key_clean(exchange=exchange, symbol=symbol, timeframe=timeframe)
    name = name or Path(path).name
    candles = candles_read_csv(path=path, timeframe=parsed, name=name)
    return candles_store(
        exchange=exchange,
        symbol=symbol,
        timeframe=timeframe,
        candles=candles,
        source=f"csv:{name}",
        acting_user=acting_user,
        actor_label=actor_label,
    )


def candles_resample(
    *,
    exchange: str,
    symbol: str,
    source_timeframe: str,
    target_timeframe: str,
    acting_user: Any = None,
    actor_label: str = "",
) -> ImportResult:
    """Build and store `target_timeframe` candles from stored `source_timeframe` ones.

    Only complete buckets are stored (apps/engine/timeframes.py): a bucket with a missing
    source candle is skipped, so it shows up as a gap in the target series too.
    """
    from apps.market.selectors import candles_load

    exchange, symbol, source = series_key_clean(
        exchange=exchange, symbol=symbol, timeframe=source_timeframe
    )
    target = timeframe_parse(timeframe=target_timeframe)
    source_candles = candles_load(exchange=exchange, symbol=symbol, timeframe=source.code)
    if len(source_candles) == 0:
        raise ApplicationError(
            f"no {exchange} {symbol} {source} candles are stored to resample",
            field="source_timeframe",
        )
    try:
        built = resample(source_candles, source, target)
    except TimeframeError as exc:
        raise ApplicationError(str(exc), field="target_timeframe") from exc
    if len(built) == 0:
        raise ApplicationError(
            f"the stored {source} candles contain no complete {target} candle",
            field="target_timeframe",
        )
    return candles_store(
        exchange=exchange,
        symbol=symbol,
        timeframe=target.code,
        candles=built,
        source=f"resample:{source.code}",
        acting_user=acting_user,
        actor_label=actor_label,
        event_type="market.candles_resampled",
    )


def candles_load_demo(*, data_dir: Path | None = None) -> list[tuple[str, ImportResult | None]]:
    """Import the shipped demo files; a file whose candles are all stored already is skipped
    without being parsed (its result is None)."""
    from apps.market.selectors import candle_series_count

    data_dir = data_dir or Path(settings.BASE_DIR) / "data" / "candles"
    results: list[tuple[str, ImportResult | None]] = []
    for file_name, (exchange, symbol, timeframe) in DEMO_FILES.items():
        path = data_dir / file_name
        with path.open("rb") as handle:
            rows = sum(1 for _ in handle) - 1
        stored = candle_series_count(exchange=exchange, symbol=symbol, timeframe=timeframe)
        if stored >= rows:
            results.append((file_name, None))
            continue
        results.append(
            (
                file_name,
                candles_import_csv(
                    path=path,
                    exchange=exchange,
                    symbol=symbol,
                    timeframe=timeframe,
                    actor_label="load_demo_candles",
                ),
            )
        )
    return results
