"""Columnar candles: the shape every vectorised part of the engine works on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
TimeArray = npt.NDArray[np.datetime64]

CSV_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")


class CandleDataError(ValueError):
    """Candle input is unusable; the message says which row or column and why."""


@dataclass(frozen=True)
class CandleArrays:
    """Candles by column, oldest first; `time` is each candle's UTC open time."""

    time: TimeArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    def __len__(self) -> int:
        return len(self.time)

    def field(self, name: str) -> FloatArray:
        if name not in ("open", "high", "low", "close", "volume"):
            raise CandleDataError(f"unknown price field {name!r}")
        values: FloatArray = getattr(self, name)
        return values

    def head(self, stop: int) -> CandleArrays:
        """The first `stop` candles, e.g. everything known at the close of bar stop-1."""
        return CandleArrays(
            self.time[:stop],
            self.open[:stop],
            self.high[:stop],
            self.low[:stop],
            self.close[:stop],
            self.volume[:stop],
        )

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> CandleArrays:
        times = pd.to_datetime(frame["timestamp"], utc=True)
        candles = cls(
            time=times.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]"),
            open=frame["open"].to_numpy(dtype=np.float64),
            high=frame["high"].to_numpy(dtype=np.float64),
            low=frame["low"].to_numpy(dtype=np.float64),
            close=frame["close"].to_numpy(dtype=np.float64),
            volume=frame["volume"].to_numpy(dtype=np.float64),
        )
        candles.validate()
        return candles

    def validate(self) -> None:
        if len(self) == 0:
            raise CandleDataError("no candles")
        if len(self) > 1 and not bool(np.all(np.diff(self.time.astype(np.int64)) > 0)):
            raise CandleDataError("timestamps must be strictly increasing")
        for name in ("open", "high", "low", "close", "volume"):
            values = self.field(name)
            if not bool(np.all(np.isfinite(values))):
                row = int(np.argmin(np.isfinite(values)))
                raise CandleDataError(
                    f"column {name!r} has a missing or non-finite value at row {row + 1}"
                )
        if bool(np.any(self.high < self.low)):
            row = int(np.argmax(self.high < self.low))
            raise CandleDataError(f"high is below low at row {row + 1}")


def read_csv(path: str | Path) -> CandleArrays:
    """Read a `timestamp,open,high,low,close,volume` CSV (ISO-8601 UTC open times)."""
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise CandleDataError(f"cannot read {path}: {exc}") from exc
    missing = [column for column in CSV_COLUMNS if column not in frame.columns]
    if missing:
        raise CandleDataError(
            f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(CSV_COLUMNS)}"
        )
    try:
        return CandleArrays.from_frame(frame)
    except (ValueError, TypeError) as exc:  # CandleDataError is a ValueError too
        raise CandleDataError(f"{path}: {exc}") from exc
