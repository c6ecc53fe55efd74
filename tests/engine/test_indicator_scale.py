"""Oscillators are scale-free: a coin priced at 1e-9 of BTC gets the same RSI and ADX.

TA-Lib treats any average move below 1e-8 as no move at all, which flattens RSI and ADX
for micro-priced coins; we test for exact zero instead.
"""

from pathlib import Path

import numpy as np
import pytest

from apps.engine.candles import read_csv
from apps.engine.indicators import adx, rsi

CANDLES = read_csv(
    Path(__file__).resolve().parents[2] / "data" / "candles" / "BTC-USDT_1h.csv"
).head(5000)


# Powers of two scale exactly, so every comparison (up move vs down move) is unchanged.
@pytest.mark.parametrize("scale", [2.0**-30, 2.0**-20, 2.0**10])
def test_rsi_and_adx_do_not_depend_on_the_price_scale(scale):
    c = CANDLES
    np.testing.assert_allclose(
        rsi(c.close * scale, 14), rsi(c.close, 14), rtol=1e-9, equal_nan=True
    )
    scaled = adx(c.high * scale, c.low * scale, c.close * scale, 14)
    np.testing.assert_allclose(scaled, adx(c.high, c.low, c.close, 14), rtol=1e-9, equal_nan=True)
    assert np.nanmax(rsi(c.close * scale, 14)) > 70  # not flattened to 0


def test_a_market_that_never_moves_has_rsi_zero():
    assert np.all(rsi(np.full(50, 3e-9), 14)[14:] == 0)
