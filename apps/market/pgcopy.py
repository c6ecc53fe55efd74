"""PostgreSQL binary COPY for candle columns, encoded and decoded with numpy.

In the binary COPY format every row is a 16-bit field count followed by, per field, a 32-bit
length and the value, all big-endian. Candle rows have no NULLs and only fixed-width types
(timestamptz = int64 microseconds since 2000-01-01 UTC, float8), so every row has the same
74-byte layout and a whole stream converts to and from a numpy structured array in one step,
with no Python object per row or per value.
"""

from __future__ import annotations

import numpy as np

from apps.engine.candles import CandleArrays

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER = SIGNATURE + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"  # flags, extension length
TRAILER = b"\xff\xff"
FIELDS = ("open", "high", "low", "close", "volume")
# Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01T00:00:00Z).
PG_EPOCH_US = 946_684_800_000_000

_VALUES = [item for name in FIELDS for item in ((f"{name}_len", ">i4"), (name, ">f8"))]
ROW_DTYPE = np.dtype([("nfields", ">i2"), ("time_len", ">i4"), ("time", ">i8"), *_VALUES])
# The same row with a leading bigint series_id, for COPY straight into market_candle.
SERIES_ROW_DTYPE = np.dtype(
    [
        ("nfields", ">i2"),
        ("series_len", ">i4"),
        ("series", ">i8"),
        ("time_len", ">i4"),
        ("time", ">i8"),
        *_VALUES,
    ]
)


class CopyFormatError(ValueError):
    """The server sent a binary COPY stream this decoder does not expect."""


def encode(candles: CandleArrays, series_id: int | None = None) -> bytes:
    """The binary COPY stream of (open_time, open, high, low, close, volume) rows, each led by
    a bigint series_id column when `series_id` is given."""
    if series_id is None:
        rows = np.empty(len(candles), dtype=ROW_DTYPE)
        rows["nfields"] = 1 + len(FIELDS)
    else:
        rows = np.empty(len(candles), dtype=SERIES_ROW_DTYPE)
        rows["nfields"] = 2 + len(FIELDS)
        rows["series_len"] = 8
        rows["series"] = series_id
    rows["time_len"] = 8
    rows["time"] = candles.time.astype("datetime64[us]").astype(np.int64) - PG_EPOCH_US
    for name in FIELDS:
        rows[f"{name}_len"] = 8
        rows[name] = candles.field(name)
    return HEADER + rows.tobytes() + TRAILER


def decode(stream: bytes | bytearray | memoryview) -> CandleArrays:
    """CandleArrays from the binary COPY stream of the same six columns."""
    view = memoryview(stream)
    if bytes(view[: len(SIGNATURE)]) != SIGNATURE:
        raise CopyFormatError("not a PostgreSQL binary COPY stream")
    extension = int.from_bytes(view[15:19], "big")
    start = 19 + extension
    body = len(view) - start - len(TRAILER)
    if body < 0 or body % ROW_DTYPE.itemsize or bytes(view[-2:]) != TRAILER:
        raise CopyFormatError("binary COPY stream has an unexpected row layout")
    rows = np.frombuffer(view, dtype=ROW_DTYPE, count=body // ROW_DTYPE.itemsize, offset=start)
    if len(rows) and not (
        bool(np.all(rows["nfields"] == 1 + len(FIELDS))) and bool(np.all(rows["time_len"] == 8))
    ):
        raise CopyFormatError("binary COPY rows are not (timestamptz, 5 x float8)")
    times = (rows["time"].astype(np.int64) + PG_EPOCH_US).astype("datetime64[us]")
    return CandleArrays(
        time=times.astype("datetime64[ns]"),
        **{name: rows[name].astype(np.float64) for name in FIELDS},
    )
