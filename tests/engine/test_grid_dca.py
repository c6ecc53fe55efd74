"""Grid and DCA on hand-computed candles and on real ones."""

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from apps.engine.candles import CandleArrays, read_csv
from apps.engine.decide import EventSpec, build_strategy
from apps.engine.event_book import EventConfig
from apps.engine.events import EventResult, run_events
from apps.engine.simulator import ExecutionConfig
from apps.engine.strategies.dca import DcaStrategy
from apps.engine.strategies.grid import GridStrategy
from apps.engine.templates import TemplateError

DATA = Path(__file__).resolve().parents[2] / "data" / "candles"


def make_candles(rows: list[tuple[float, float, float, float]]) -> CandleArrays:
    times = pd.date_range("2024-01-01", periods=len(rows), freq="h")
    o, h, lo, c = (np.array(col, dtype=float) for col in zip(*rows, strict=True))
    return CandleArrays(times.to_numpy(dtype="datetime64[ns]"), o, h, lo, c, np.ones(len(rows)))


@cache
def real(name: str) -> CandleArrays:
    return read_csv(DATA / name)


def cash_config(cash: float = 1000, **kwargs: float) -> EventConfig:
    return EventConfig(ExecutionConfig(cash=cash), **kwargs)


def test_grid_buys_each_level_and_sells_it_one_level_higher() -> None:
    rows = [
        (100, 101, 99, 100),  # start 100: buys rest at 90 and 80, 500 each
        (98, 99, 89, 92),  # level 1 fills at 90
        (92, 95, 78, 85),  # level 2 fills at 80
        (85, 101, 84, 100),  # lot 1 sells at 100, lot 2 at 90
        (100, 100, 100, 100),
    ]
    result = run_events(
        GridStrategy({"levels": 2, "spacing": 0.1}), make_candles(rows), cash_config()
    )
    one, two = result.trades
    assert (one.entry_index, one.entry_price, one.exit_index, one.exit_price) == (1, 90, 3, 100)
    assert (two.entry_index, two.entry_price, two.exit_index, two.exit_price) == (2, 80, 3, 90)
    assert one.size == pytest.approx(500 / 90) and two.size == pytest.approx(500 / 80)
    assert {one.exit_reason, two.exit_reason} == {"take_profit"}
    assert result.equity[2] == pytest.approx((500 / 90 + 500 / 80) * 85)
    assert result.final_equity == pytest.approx(1000 + 500 / 90 * 10 + 500 / 80 * 10)
    # Both levels are waiting again at the end.
    assert sorted((o.tag, o.limit_price) for o in result.open_orders) == [
        ("grid-1", 90),
        ("grid-2", 80),
    ]


def test_grid_fills_at_the_open_on_a_gap_and_pays_the_maker_fee() -> None:
    rows = [(100, 101, 99, 100), (88, 89, 87, 88), (88, 89, 87, 88)]
    result = run_events(
        GridStrategy({"levels": 2, "spacing": 0.1}),
        make_candles(rows),
        cash_config(maker_fee=0.001, taker_fee=0.005),
    )
    (lot,) = result.trades
    assert lot.entry_price == 88 and lot.exit_reason == "open"
    assert lot.size == pytest.approx(500 / (88 * 1.001))
    assert lot.fee == pytest.approx(500 / 1.001 * 0.001)


def test_grid_parameters_that_reach_zero_are_refused_naming_spacing() -> None:
    with pytest.raises(TemplateError, match="below 1") as error:
        GridStrategy({"levels": 20, "spacing": 0.05})
    assert error.value.field == "spacing"
    with pytest.raises(TemplateError, match="levels"):
        GridStrategy({"levels": 1})


def test_dca_buys_slices_and_sells_everything_at_the_target_over_the_average() -> None:
    rows = [
        (100, 101, 99, 100),  # slice = 500; buy decided
        (100, 101, 99, 100),  # 5 units at 100; target 110 placed
        (100, 105, 95, 98),  # regular buy decided (every 2 bars); target withdrawn
        (96, 98, 95, 97),  # 500/96 units at 96; new target over the average
        (97, 110, 96, 108),  # target touched: everything sells
        (108, 109, 107, 108),
    ]
    params = {"interval": 2, "slice": 0.5, "take_profit": 0.1}
    result = run_events(DcaStrategy(params), make_candles(rows), cash_config())
    first, second = result.trades[:2]
    units = 5 + 500 / 96
    target = 1000 / units * 1.1  # the average is 1000 / units
    assert (first.entry_price, first.size, second.entry_price) == (100, 5, 96)
    assert second.size == pytest.approx(500 / 96)
    assert first.exit_index == second.exit_index == 4
    assert first.exit_price == second.exit_price == pytest.approx(target)
    assert {first.exit_reason, second.exit_reason} == {"take_profit"}
    assert first.pnl + second.pnl == pytest.approx(units * target - 1000)
    # Bar 4 is a regular-buy bar again: the cycle restarts with a fresh slice.
    assert result.trades[2].entry_index == 5 and result.trades[2].exit_reason == "open"


def test_dca_adds_a_safety_slice_after_a_drop() -> None:
    rows = [(100, 101, 99, 100), (100, 101, 99, 100), (95, 96, 88, 89), (89, 90, 88, 89), FLAT]
    params = {"interval": 100, "slice": 0.25, "take_profit": 0.1}
    result = run_events(DcaStrategy(params), make_candles(rows), cash_config())
    assert [(t.entry_index, t.entry_price) for t in result.trades] == [(1, 100), (3, 89)]


FLAT = (89.0, 90.0, 88.0, 89.0)


def check_account(result: EventResult, candles: CandleArrays, cash: float) -> None:
    """Never more sold than bought, never more spent than held, books that add up."""
    last = float(candles.close[-1])
    open_value = sum(t.size * last for t in result.trades if t.exit_index is None)
    realised = sum(t.pnl for t in result.trades if t.exit_index is not None)
    held_cost = sum(t.size * t.entry_price + t.fee for t in result.trades if t.exit_index is None)
    assert result.final_equity == pytest.approx(cash + realised - held_cost + open_value)
    assert all(t.size > 0 for t in result.trades)
    assert np.all(np.isfinite(result.equity)) and np.all(result.equity > 0)
    for t in result.trades:
        assert t.exit_index is None or t.exit_index >= t.entry_index


@pytest.mark.parametrize("file", ["BTC-USDT_1h.csv", "ETH-BTC_5m.csv", "BNB-USDT_1h.csv"])
def test_grid_on_real_candles(file: str) -> None:
    candles = real(file)
    spec = EventSpec("grid", {"levels": 8, "spacing": 0.01})
    result = run_events(
        build_strategy(spec), candles.head(6_000), cash_config(10_000, maker_fee=0.001)
    )
    check_account(result, candles.head(6_000), 10_000)
    closed = [t for t in result.trades if t.exit_index is not None]
    assert closed, "a sideways stretch should complete some grid round trips"
    for t in closed:
        # Sold one level (1 % of the start price) above its level: at least the spacing.
        assert t.exit_price > t.entry_price
        assert t.exit_reason == "take_profit"
    assert len({t.entry_index for t in result.trades}) <= len(result.trades)


@pytest.mark.parametrize("file", ["BTC-USDT_1h.csv", "BTC-USD_1h.csv", "BNB-USDT_1h.csv"])
def test_dca_on_real_candles(file: str) -> None:
    candles = real(file).head(8_000)
    params = {"interval": 24, "slice": 0.05, "take_profit": 0.03}
    config = EventConfig(ExecutionConfig(cash=10_000, fee=0.001, slippage=0.0005))
    result = run_events(build_strategy(EventSpec("dca", params)), candles, config)
    check_account(result, candles, 10_000)
    by_exit: dict[int, list] = {}
    for t in result.trades:
        if t.exit_index is not None:
            by_exit.setdefault(t.exit_index, []).append(t)
    assert by_exit, "DCA should reach its target at least once"
    for trades in by_exit.values():
        size = sum(t.size for t in trades)
        average = sum(t.size * t.entry_price for t in trades) / size
        # Everything sells together, at or above the target over the average.
        assert trades[0].exit_price >= average * 1.03 * (1 - 1e-12)
        assert len({t.exit_price for t in trades}) == 1


def test_grid_with_a_drawdown_stop_halts_and_cancels_its_orders() -> None:
    candles = real("BTC-USDT_1h.csv")
    config = EventConfig(ExecutionConfig(cash=10_000, max_drawdown_stop=0.05))
    result = run_events(GridStrategy({"levels": 10, "spacing": 0.01}), candles.head(10_000), config)
    assert result.halted_at is not None
    assert result.open_orders == []
    assert all(t.exit_index is not None and t.exit_index <= result.halted_at for t in result.trades)
    assert any(t.exit_reason == "max_drawdown" for t in result.trades)
