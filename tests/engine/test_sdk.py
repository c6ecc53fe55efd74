"""The script sdk: its surface, its state rules, and a script that trades like a template."""

from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from apps.engine.backtest import StrategySpec, signals
from apps.engine.candles import CandleArrays, read_csv
from apps.engine.clock import FixedClock
from apps.engine.decide import ScriptSpec, StrategyState, step
from apps.engine.event_book import EventConfig
from apps.engine.events import run_events
from apps.engine.indicators import compute
from apps.engine.sdk import CandlesView, Sdk, SdkError, Series, Times
from apps.engine.simulator import ExecutionConfig, simulate
from apps.engine.strategies.base import Balance, Lot, OrderIntent, Position
from apps.engine.strategies.indicators import IndicatorCache
from apps.engine.strategies.script import ScriptStrategy

DATA = Path(__file__).resolve().parents[2] / "data" / "candles"
CLOCK = FixedClock(datetime(2024, 5, 1, 12, tzinfo=UTC))


@cache
def btc_usd() -> CandleArrays:
    return read_csv(DATA / "BTC-USD_1h.csv")


def sma_cross(sdk: Any, params: dict[str, Any]) -> None:
    fast, slow = sdk.sma(params["fast"]), sdk.sma(params["slow"])
    if len(sdk.candles) < 2:
        return
    if sdk.position.size == 0 and fast[-2] < slow[-2] and fast[-1] > slow[-1]:
        sdk.buy()
        sdk.state["buys"] = sdk.state.get("buys", 0) + 1
    elif sdk.position.size > 0 and fast[-2] > slow[-2] and fast[-1] < slow[-1]:
        sdk.close()


def test_a_script_sma_cross_trades_exactly_as_the_template_on_candles_with_ties() -> None:
    candles = btc_usd()
    config = ExecutionConfig(fee=0.001, stop_loss=0.05)
    spec = StrategySpec.from_template("sma_cross", {"fast": 10, "slow": 30})
    expected = simulate(candles, *signals(spec, candles), config)
    result = run_events(
        ScriptStrategy(sma_cross, {"fast": 10, "slow": 30}), candles, EventConfig(config)
    )
    assert result.trades == expected.trades and len(expected.trades) > 500
    assert np.array_equal(result.equity, expected.equity)
    assert result.memory["buys"] == len(expected.trades)


def one_bar_sdk(memory: dict[str, Any] | None = None, length: int = 100) -> Sdk:
    candles = btc_usd().head(length)
    position = Position.of((Lot("a", 2.0, 250.0),))
    resting = (OrderIntent("sell", "limit", limit_price=300, tag="tp"),)
    state = StrategyState(None, position, Balance(500.0, 1000.0), resting, memory or {})
    from apps.engine.strategies.base import BarContext

    return Sdk(BarContext(candles, state, CLOCK, IndicatorCache(candles).window(length)))


def test_series_are_plain_python_values_of_the_window_only() -> None:
    sdk = one_bar_sdk(length=100)
    close = sdk.candles.close
    assert len(sdk.candles) == len(close) == 100
    assert isinstance(close[-1], float) and close[-1] == float(btc_usd().close[99])
    assert close[-3:] == btc_usd().close[97:100].tolist()
    assert sdk.candles.time[-1] == datetime(2015, 10, 12, 17, tzinfo=UTC)
    with pytest.raises(IndexError):
        close[100]
    assert np.isnan(sdk.sma(50)[10]) and isinstance(sdk.sma(50)[-1], float)
    assert sdk.bollinger(20, 2.0, "lower")[-1] < sdk.bollinger(20, 2.0, "upper")[-1]
    assert sdk.now == CLOCK.now()
    assert sdk.position.size == 2 and sdk.balance.cash == 500


def test_indicators_on_the_window_equal_the_backtests_cut_of_the_full_series() -> None:
    candles = btc_usd()
    full = IndicatorCache(candles)
    cases = [
        ("sma", {"period": 30}),
        ("ema", {"period": 21}),
        ("rsi", {"period": 14}),
        ("bollinger", {"period": 20, "num_std": 2.0}),
        ("macd", {}),
        ("atr", {"period": 14}),
    ]
    for t in np.random.default_rng(1).integers(40, len(candles), 25).tolist():
        window = candles.head(t + 1)
        for name, params in cases:
            on_window = compute(
                name, params, {f: window.field(f) for f in ("high", "low", "close")}
            )
            for output, values in on_window.items():
                cut = full.window(t + 1).get(name, params, output)
                assert np.array_equal(cut, values, equal_nan=True), (name, output, t)


def test_orders_become_intents_cancels_first() -> None:
    sdk = one_bar_sdk()
    sdk.buy(amount=100)
    sdk.sell(fraction=0.5, limit=320, tag="half")
    sdk.cancel("tp")
    sdk.close()
    intents = sdk.intents()
    assert intents[0] == OrderIntent("sell", tag="tp", action="cancel")
    assert intents[1:] == (
        OrderIntent("buy", amount=100),
        OrderIntent("sell", "limit", fraction=0.5, limit_price=320, tag="half"),
        OrderIntent("sell"),
    )
    with pytest.raises(SdkError, match=r"sdk\.buy: give at most one"):
        sdk.buy(size=1, amount=5)
    with pytest.raises(SdkError, match="fraction"):
        sdk.sell(fraction=2)


def test_state_must_be_json_and_round_trips_like_a_bot_reload() -> None:
    sdk = one_bar_sdk({"n": 1})
    sdk.state["pair"] = (1, 2)
    sdk.state["n"] += 1
    assert sdk.json_state() == {"n": 2, "pair": [1, 2]}
    for bad in ({1, 2}, float("nan"), object()):
        sdk = one_bar_sdk()
        sdk.state["x"] = bad
        with pytest.raises(SdkError, match="JSON"):
            sdk.json_state()
    sdk = one_bar_sdk()
    sdk.state["big"] = "x" * 70_000
    with pytest.raises(SdkError, match="limit"):
        sdk.json_state()
    with pytest.raises(AttributeError):
        sdk.state = {}  # type: ignore[misc]


def test_state_and_logs_persist_through_an_event_run() -> None:
    def counter(sdk: Any, params: dict[str, Any]) -> None:
        sdk.state["bars"] = sdk.state.get("bars", 0) + 1
        if sdk.state["bars"] % 10 == 0:
            sdk.log("bar", sdk.state["bars"], "close", sdk.candles.close[-1])

    result = run_events(ScriptStrategy(counter), btc_usd().head(35))
    assert result.memory == {"bars": 35}
    assert len(result.logs) == 3 and result.logs[0].startswith("2015-10-09T00:00:00+00:00 bar 10")


ALLOWED = (
    Sdk,
    int,
    float,
    str,
    bool,
    type(None),
    datetime,
    Series,
    Times,
    CandlesView,
    Position,
    Balance,
    Lot,
    OrderIntent,
    tuple,
    dict,
)


PLAIN = (Sdk, Series, Times, CandlesView, Position, Balance, Lot, OrderIntent)


def test_the_public_surface_reaches_only_plain_data_and_sdk_methods() -> None:
    sdk = one_bar_sdk()
    public = sorted(name for name in dir(sdk) if not name.startswith("_"))
    assert public == [
        "atr",
        "balance",
        "bollinger",
        "buy",
        "cancel",
        "candles",
        "close",
        "ema",
        "indicator",
        "intents",
        "json_state",
        "lines",
        "log",
        "macd",
        "now",
        "orders",
        "position",
        "rsi",
        "sell",
        "sma",
        "state",
        "wma",
    ]
    seen: list[str] = []

    def walk(value: Any, path: str, depth: int) -> None:
        if callable(value) and not isinstance(value, type):
            owner = getattr(value, "__self__", None)
            owner_type = owner if isinstance(owner, type) else type(owner)
            assert owner is None or owner_type in PLAIN, (path, owner_type)
            return
        assert isinstance(value, ALLOWED), (path, type(value))
        assert not isinstance(value, np.ndarray)
        seen.append(path)
        if depth > 3 or isinstance(value, (int, float, str, datetime)):
            return
        items = (
            value.items()
            if isinstance(value, dict)
            else (
                enumerate(value)
                if isinstance(value, tuple)
                else ((n, getattr(value, n)) for n in dir(value) if not n.startswith("_"))
            )
        )
        for key, child in items:
            walk(child, f"{path}.{key}", depth + 1)

    walk(sdk, "sdk", 0)
    assert "sdk.candles.close" in seen and "sdk.position.lots.0.entry_price" in seen
    assert not hasattr(sdk, "__dict__")  # slots only: nothing to add or swap


def test_a_script_step_is_what_a_bot_tick_calls() -> None:
    decision = step(
        StrategyState(ScriptSpec(sma_cross, {"fast": 10, "slow": 30})), btc_usd().head(200), CLOCK
    )
    assert decision.intents in ((), (OrderIntent("buy"),))
