"""A paper bot replayed over real candles makes exactly the backtest's trades (issue 6 §8).

Each bar the replay does what a bot tick does (paper_replay.py): feed the closed candle to
the paper broker, decide with `decide.step` on candles[:t+1], size and check through
`risk_check`, place. The backtest is `run_backtest` with the same fee and slippage.

The backtest is float and has no market precision; the paper side is Decimal on an
instrument with a step, a tick and a fee precision. With a fine instrument (1e-12 steps)
the two agree on every trade to 8 decimals: entry and exit times and reasons exactly,
prices, sizes and fees within 1e-8, P&L within 1e-6 (float sums over hundreds of trades).
With Binance's BTC/USDT precision the times still agree exactly, prices to the 0.01 tick
(a slipped price is rounded to the tick) and sizes only by the rounding down to 0.00001 BTC.
"""

from decimal import Decimal
from functools import cache
from pathlib import Path

import pytest

from apps.engine.backtest import StrategySpec, TradeRow, run_backtest
from apps.engine.brokers.paper import PaperConfig
from apps.engine.candles import CandleArrays, read_csv
from apps.engine.round_trips import RoundTrip, round_trips
from apps.engine.simulator import ExecutionConfig
from apps.engine.types import Instrument
from tests.engine.paper_replay import new_replay, run_replay

DATA = Path(__file__).resolve().parents[2] / "data" / "candles"
FINE = Instrument(
    "BTC/USDT",
    tick_size=Decimal("1e-8"),
    step_size=Decimal("1e-12"),
    quote_precision=Decimal("1e-12"),
)
BINANCE_BTC = Instrument(
    "BTC/USDT", tick_size=Decimal("0.01"), step_size=Decimal("0.00001"), min_notional=Decimal(5)
)
CASES = [
    ("BTC-USDT_1d.csv", None, 0.001, 0.0005),
    ("ETH-USDT_1d.csv", None, 0.001, 0.0),
    ("BNB-USDT_1d.csv", None, 0.00075, 0.001),
    ("BNB-USDT_1h.csv", 2500, 0.001, 0.0005),
]


@cache
def candles_of(name: str, bars: int | None) -> CandleArrays:
    candles = read_csv(DATA / name)
    return candles if bars is None else candles.head(bars)


def paper_and_backtest(
    name: str, bars: int | None, fee: float, slippage: float, instrument: Instrument
) -> tuple[list[TradeRow], list[RoundTrip]]:
    candles = candles_of(name, bars)
    spec = StrategySpec.from_template("sma_cross")
    report = run_backtest(spec, candles, ExecutionConfig(cash=10_000, fee=fee, slippage=slippage))
    replay = run_replay(
        new_replay(instrument, PaperConfig.of(fee=fee, slippage=slippage)), spec, candles
    )
    assert replay.rejections == []
    last_close = Decimal(str(float(candles.close[-1])))
    return report.trades, round_trips(replay.fills, {instrument.symbol: last_close})


def iso(trip_time: object) -> str | None:
    return None if trip_time is None else f"{trip_time:%Y-%m-%dT%H:%M:%SZ}"


def near(paper: Decimal | None, backtest: float | None, within: str) -> bool:
    if paper is None or backtest is None:
        return paper is None and backtest is None
    return abs(paper - Decimal(str(backtest))) <= Decimal(within)


@pytest.mark.parametrize(("name", "bars", "fee", "slippage"), CASES)
def test_a_paper_bot_replays_the_backtests_trades(
    name: str, bars: int | None, fee: float, slippage: float
) -> None:
    backtest, paper = paper_and_backtest(name, bars, fee, slippage, FINE)
    assert len(backtest) >= 15
    assert len(paper) == len(backtest)
    for k, (want, got) in enumerate(zip(backtest, paper, strict=True)):
        assert (iso(got.entry_time), iso(got.exit_time)) == (want.entry_time, want.exit_time), k
        assert want.exit_reason == ("open" if got.exit_time is None else "signal"), k
        assert near(got.entry_price, want.entry_price, "1e-8"), (k, got, want)
        assert near(got.exit_price, want.exit_price, "1e-8"), (k, got, want)
        assert near(got.qty, want.size, "1e-8"), (k, got, want)
        assert near(got.fee, want.fee, "1e-8"), (k, got, want)
        assert near(got.pnl, want.pnl, "1e-6"), (k, got, want)


def test_market_precision_only_rounds_sizes_down() -> None:
    backtest, paper = paper_and_backtest("BTC-USDT_1d.csv", None, 0.001, 0.0005, BINANCE_BTC)
    assert len(paper) == len(backtest)
    for want, got in zip(backtest, paper, strict=True):
        assert (iso(got.entry_time), iso(got.exit_time)) == (want.entry_time, want.exit_time)
        assert near(got.entry_price, want.entry_price, "0.01")  # slipped, then on the tick
        assert near(got.exit_price, want.exit_price, "0.01")
        assert got.qty % BINANCE_BTC.step_size == 0
        assert abs(got.qty / Decimal(str(want.size)) - 1) < Decimal("0.001")
