"""decide(): a bot's decision on candles[:t+1] is the backtest's decision at bar t."""

from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from apps.engine.backtest import StrategySpec, StrategySpecError, signals
from apps.engine.candles import CandleArrays, read_csv
from apps.engine.clock import BarClock, FixedClock, bar_length
from apps.engine.decide import (
    Balance,
    EventSpec,
    Lot,
    OrderIntent,
    Position,
    ScriptSpec,
    StrategyState,
    build_strategy,
    decide,
    step,
)
from apps.engine.event_book import EventConfig
from apps.engine.events import run_events
from apps.engine.indicators import sma
from apps.engine.simulator import ExecutionConfig, simulate
from apps.engine.strategies.base import IntentError

DATA = Path(__file__).resolve().parents[2] / "data" / "candles"
TEMPLATES = ("sma_cross", "rsi_swing", "macd", "donchian_breakout", "bollinger_reversion")
CLOCK = FixedClock(datetime(2024, 1, 1, tzinfo=UTC))
LONG = Position.of((Lot("entry", 1.0, 100.0),))


@cache
def btc_usd() -> CandleArrays:
    return read_csv(DATA / "BTC-USD_1h.csv")


def sample_bars(candles: CandleArrays, entries: np.ndarray, exits: np.ndarray) -> list[int]:
    """A few hundred bars: spread over the file, every bar where SMA(10) and SMA(30) tie
    exactly (and the bar after), and bars where each signal fires."""
    n = len(candles)
    fast, slow = sma(candles.close, 10), sma(candles.close, 30)
    ties = np.flatnonzero(fast == slow)
    assert len(ties) > 0, "BTC-USD_1h.csv is expected to hold exact SMA ties"
    bars = {0, 1, n - 1, *np.random.default_rng(5).integers(0, n, 80).tolist()}
    bars.update(int(t) for t in ties)
    bars.update(int(t) + 1 for t in ties if t + 1 < n)
    for signal in (entries, exits):
        fired = np.flatnonzero(signal)
        bars.update(int(t) for t in fired[:: max(1, len(fired) // 30)])
    return sorted(bars)


@pytest.mark.parametrize("template", TEMPLATES)
def test_decide_on_each_window_agrees_with_the_vectorised_signals(template: str) -> None:
    candles = btc_usd()
    spec = StrategySpec.from_template(template)
    entries, exits = signals(spec, candles)
    bars = sample_bars(candles, entries, exits)
    flat, long = StrategyState(spec), StrategyState(spec, LONG)
    for t in bars:
        window = candles.head(t + 1)
        on_flat, on_long = decide(flat, window, CLOCK), decide(long, window, CLOCK)
        assert [i.side for i in on_flat] == (["buy"] if entries[t] else []), t
        assert [i.side for i in on_long] == (["sell"] if exits[t] else []), t
    assert len(bars) > 120
    assert entries[bars].sum() >= 20 and exits[bars].sum() >= 20


def test_an_entry_intent_is_sized_by_the_config_and_an_exit_sells_everything() -> None:
    candles = btc_usd()
    spec = StrategySpec.from_template("sma_cross")
    entries, _ = signals(spec, candles)
    t = int(np.flatnonzero(entries)[3])
    (intent,) = decide(StrategyState(spec), candles.head(t + 1), CLOCK)
    assert (intent.side, intent.type, intent.size, intent.fraction, intent.amount) == (
        "buy",
        "market",
        None,
        None,
        None,
    )


def test_a_bot_stepping_through_decide_books_the_backtests_trades() -> None:
    """A minimal replay: decide() per closed candle, the event book filling the intents."""
    candles = btc_usd().head(3_000)
    spec = StrategySpec.from_template("sma_cross")
    config = ExecutionConfig(fee=0.001)
    expected = simulate(candles, *signals(spec, candles), config)
    replay = run_events(build_strategy(spec), candles, EventConfig(config))
    assert replay.trades == expected.trades and len(expected.trades) > 10


def test_intents_cross_to_brokers_as_exact_decimals() -> None:
    intent = OrderIntent("buy", "limit", amount=0.1, limit_price=27123.45, tag="grid-1")
    as_decimals = intent.decimals()
    assert as_decimals["amount"] == Decimal("0.1")
    assert as_decimals["limit_price"] == Decimal("27123.45")
    assert as_decimals["size"] is None and as_decimals["tag"] == "grid-1"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"size": 1.0, "amount": 5.0}, "at most one"),
        ({"size": -1.0}, "size"),
        ({"fraction": 1.5}, "fraction"),
        ({"amount": float("nan")}, "amount"),
        ({"type": "limit"}, "limit_price"),
        ({"limit_price": 10.0}, "limit_price"),
    ],
)
def test_malformed_intents_are_refused_naming_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(IntentError, match=field):
        OrderIntent("buy", **kwargs)


def test_decide_runs_every_kind_of_strategy() -> None:
    candles = btc_usd().head(50)
    grid = decide(
        StrategyState(EventSpec("grid", {"levels": 3}), balance=Balance(900, 900)), candles, CLOCK
    )
    assert [(i.side, i.type, i.amount) for i in grid] == [("buy", "limit", 300.0)] * 3

    def main(sdk, params):
        sdk.buy(fraction=params["f"])
        sdk.state["at"] = sdk.now.isoformat()

    decision = step(StrategyState(ScriptSpec(main, {"f": 0.5})), candles, CLOCK)
    assert decision.intents == (OrderIntent("buy", fraction=0.5),)
    assert decision.memory == {"at": "2024-01-01T00:00:00+00:00"}
    with pytest.raises(StrategySpecError, match="event path"):
        build_strategy(EventSpec("sma_cross"))


def test_clocks_are_tz_aware_and_a_bar_clock_gives_each_bars_close() -> None:
    with pytest.raises(ValueError, match="tz-aware"):
        FixedClock(datetime(2024, 1, 1))
    candles = btc_usd().head(10)
    clock = BarClock(candles.time, bar_length(candles.time))
    clock.advance_to(3)
    assert clock.now() == datetime(2015, 10, 8, 18, tzinfo=UTC)  # bar 3 opens at 17:00
