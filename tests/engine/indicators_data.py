"""Real candles from data/candles for the indicator tests (loaded once per file)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

CANDLES = Path(__file__).resolve().parents[2] / "data" / "candles"

# Every real file shipped with the project; the first three are the ones the issue names.
REAL_FILES = (
    "BTC-USDT_1h.csv",
    "BTC-USD_1h.csv",
    "ETH-BTC_5m.csv",
    "BNB-USDT_1h.csv",
    "BTC-USDT_5m.csv",
    "BTC-USDT_1d.csv",
    "ETH-USDT_1d.csv",
    "BNB-USDT_1d.csv",
    "BTC-USD_1mo.csv",
)


@dataclass(frozen=True)
class Candles:
    name: str
    timestamp: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def fields(self) -> dict[str, np.ndarray]:
        return {
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "close": self.close,
            "volume": self.volume,
        }

    def index_of(self, timestamp: str) -> int:
        (hits,) = np.nonzero(self.timestamp == timestamp)
        assert len(hits) == 1, timestamp
        return int(hits[0])


@cache
def load(name: str) -> Candles:
    frame = pd.read_csv(CANDLES / name)
    arrays = {
        col: np.ascontiguousarray(frame[col].to_numpy(dtype=np.float64))
        for col in ("open", "high", "low", "close", "volume")
    }
    for arr in arrays.values():
        arr.flags.writeable = False  # shared between tests: nobody may change them
    return Candles(name=name, timestamp=frame["timestamp"].to_numpy(dtype=str), **arrays)
