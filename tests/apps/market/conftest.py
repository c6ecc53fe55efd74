from pathlib import Path

import pytest

from apps.market.services import candles_import_csv

DATA = Path(__file__).resolve().parents[3] / "data" / "candles"


@pytest.fixture
def btc_1h(db):
    return candles_import_csv(
        path=DATA / "BTC-USDT_1h.csv", exchange="binance", symbol="BTC/USDT", timeframe="1h"
    )
