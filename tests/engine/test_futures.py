"""Futures backtests: leverage, shorts, funding and liquidation, on hand-built candles whose
numbers are worked out here, and leverage 1 against the spot simulator on real candles."""

import math

import pytest

from apps.engine.backtest import BacktestReport, StrategySpec, run_backtest
from apps.engine.candles import CandleArrays
from apps.engine.event_book import EventConfig
from apps.engine.futures import FuturesConfig
from apps.engine.pair_backtest import PairSettings, run_pair_backtest
from apps.engine.simulator import ExecutionConfig, SimulationConfigError
from apps.engine.stops import StopRules
from tests.engine.test_event_path import CONFIGS
from tests.engine.test_event_path import candles as real_candles
from tests.engine.test_pair_backtest import FLAT, TAPE, Row, tape


def futures_run(
    candles: CandleArrays,
    futures: FuturesConfig,
    spec: StrategySpec = TAPE,
    order_type: str = "market",
    limit_offset: float = 0.0,
    **execution: float | str,
) -> BacktestReport:
    config = EventConfig(ExecutionConfig(**{"cash": 1000, **execution}))
    settings = PairSettings(config, "futures", order_type, limit_offset, futures)
    return run_pair_backtest(spec, candles, settings)


# -- leverage 1 is spot -----------------------------------------------------------------


SPOT_CONFIGS = ("plain", "stops", "risk_drawdown", "trail_only_percent")


@pytest.mark.parametrize("config_name", SPOT_CONFIGS)
@pytest.mark.parametrize("template", ["sma_cross", "rsi_swing"])
def test_leverage_one_long_without_funding_trades_exactly_as_spot(template, config_name):
    candles, config = real_candles("BTC-USD_1h.csv").head(15_000), CONFIGS[config_name]
    spec = StrategySpec.from_template(template)
    spot = run_backtest(spec, candles, config)
    futures = FuturesConfig(leverage=1, funding_rate=0.0)
    report = run_pair_backtest(
        spec, candles, PairSettings(EventConfig(config), "futures", futures=futures)
    )
    assert len(spot.result.trades) > 10
    assert report.result.trades == spot.result.trades  # every field, exact floats
    assert (report.equity == spot.equity).all()
    assert report.metrics.final_equity == spot.metrics.final_equity
    assert (report.metrics.funding_paid, report.metrics.liquidations) == (0.0, 0)


# -- shorts -----------------------------------------------------------------------------


def test_a_short_sells_on_entry_and_buys_back_on_exit_with_fees_on_the_notional():
    rows: list[Row] = [
        (100, 101, 99, 100, "entry"),
        (100, 102, 95, 96, ""),  # sold at 100
        (96, 97, 89, 90, "exit"),
        (90, 91, 88, 89, ""),  # bought back at 90
        FLAT,
    ]
    futures = FuturesConfig(leverage=2, direction="short", funding_rate=0.0)
    report = futures_run(tape(rows), futures, fee=0.001)
    (trade,) = report.result.trades
    # All in: margin (notional / 2) plus the fee on the notional spend the 1000.
    units = 1000 / (100 / 2 + 100 * 0.001)
    assert trade.side == "short" and trade.exit_reason == "signal"
    assert (trade.entry_index, trade.entry_price, trade.exit_index, trade.exit_price) == (
        1,
        100,
        3,
        90,
    )
    assert trade.size == pytest.approx(units, rel=1e-12)
    assert trade.fee == pytest.approx(units * 100 * 0.001 + units * 90 * 0.001, rel=1e-12)
    assert trade.pnl == pytest.approx(units * (100 - 90) - trade.fee, rel=1e-12)
    # Equity is the wallet plus the short's unrealised P&L at the close.
    assert report.equity[1] == pytest.approx(1000 - units * 0.1 + units * (100 - 96), rel=1e-12)
    assert report.metrics.final_equity == pytest.approx(1000 + trade.pnl, rel=1e-12)


SOLD_AT = 100 * 0.999  # a market sell at 100 gets the slippage below the open


@pytest.mark.parametrize(
    ("settings", "bars", "exit_price", "reason"),
    [
        # The stop-loss sits above a short's entry price.
        ({"stop_loss": 0.05}, [(101, 106, 100, 104, "")], SOLD_AT * 1.05, "stop_loss"),
        # A bar that opens above it fills at the open.
        ({"stop_loss": 0.05}, [(108, 109, 104, 105, "")], 108, "stop_loss"),
        # The take-profit sits below it.
        ({"take_profit": 0.05}, [(99, 100, 94, 96, "")], SOLD_AT * 0.95, "take_profit"),
        # The trail follows the lowest EARLIER low: 90 x 1.05 from the bar after it.
        (
            {"trailing_stop": 0.05},
            [(99, 100, 90, 91, ""), (92, 95, 91, 94, "")],
            94.5,
            "trailing_stop",
        ),
    ],
)
def test_a_short_s_stops_are_the_mirror_image_of_a_long_s(settings, bars, exit_price, reason):
    rows: list[Row] = [(100, 101, 99, 100, "entry"), (100, 101, 99, 100, ""), *bars, FLAT]
    futures = FuturesConfig(direction="short", funding_rate=0.0)
    report = futures_run(tape(rows), futures, slippage=0.001, **settings)
    trade = report.result.trades[0]
    assert trade.entry_price == SOLD_AT
    assert trade.exit_index == 1 + len(bars)
    assert trade.exit_reason == reason
    assert trade.exit_price == pytest.approx(exit_price * 1.001, rel=1e-12)  # buying back


def test_a_short_limit_entry_rests_above_the_close_and_pays_the_maker_fee():
    rows: list[Row] = [(100, 101, 99, 100, "entry"), (101, 103, 100, 101, ""), FLAT]
    config = EventConfig(ExecutionConfig(cash=1000), maker_fee=0.0002, taker_fee=0.0005)
    futures = FuturesConfig(leverage=2, direction="short", funding_rate=0.0)
    settings = PairSettings(config, "futures", "limit", 0.02, futures)
    (trade,) = run_pair_backtest(TAPE, tape(rows), settings).result.trades
    units = 1000 / (102 / 2 + 102 * 0.0002)
    assert (trade.entry_index, trade.entry_price, trade.exit_index) == (1, 102, None)
    assert trade.size == pytest.approx(units, rel=1e-12)
    assert trade.fee == pytest.approx(units * 102 * 0.0002, rel=1e-12)


def test_risk_sizing_loses_the_risked_fraction_of_equity_at_the_stop_whatever_the_leverage():
    rows: list[Row] = [(100, 101, 99, 100, "entry"), FLAT, (99, 99, 95, 96, ""), FLAT]
    futures = FuturesConfig(leverage=5, funding_rate=0.0)
    report = futures_run(
        tape(rows), futures, sizing="risk", size_value=0.01, stop_loss=0.02, fee=0.001
    )
    (trade,) = report.result.trades
    assert trade.size == pytest.approx(0.01 * 1000 / (100 * 0.02), rel=1e-12)  # 5 units
    assert (trade.exit_price, trade.exit_reason) == (98, "stop_loss")
    assert trade.pnl == pytest.approx(-0.01 * 1000 - 5 * 100 * 0.001 - 5 * 98 * 0.001, rel=1e-12)


@pytest.mark.parametrize("side", ["long", "short"])
def test_the_stop_rules_find_the_same_exit_over_arrays_as_bar_by_bar(side):
    data = real_candles("BTC-USDT_1h.csv").head(4_000)
    rules = StopRules(stop_loss=0.03, take_profit=0.06, trailing_stop=0.04, side=side)
    reasons = set()
    for start in range(0, 3_900, 13):
        bars = slice(start, start + 40)
        opens, highs, lows = data.open[bars], data.high[bars], data.low[bars]
        entry, best, expected = float(opens[0]), float(opens[0]), None
        for k in range(40):  # as the event book walks a lot's bars
            found = rules.exit(entry, best, opens[k], highs[k], lows[k])
            if found is not None:
                expected = (k, *found)
                break
            best = rules.best_after(best, highs[k], lows[k])
        assert rules.first_exit(entry, opens, highs, lows) == expected
        reasons.add(expected[2] if expected else None)
    assert reasons == {"stop_loss", "take_profit", "trailing_stop", None}


# -- liquidation ------------------------------------------------------------------------


def half_in(
    futures: FuturesConfig, rows: list[Row], start: str = "2024-01-01", **execution: float
) -> BacktestReport:
    """Half the equity as margin plus fees, so something is left after a liquidation."""
    candles = tape(rows, start=start)
    return futures_run(candles, futures, sizing="percent", size_value=0.5, fee=0.0004, **execution)


@pytest.mark.parametrize(
    ("direction", "survives", "liquidates", "liquidation_price"),
    [
        # Long: 500/10.04 units at 100 on 10x, so margin = size x 10, and
        # margin + size (p - 100) = 0.005 size p gives p = 90 / 0.995.
        ("long", (99, 99.5, 90.46, 91, ""), (91, 92, 90, 90.5, ""), 90 / 0.995),
        # Short: margin + size (100 - p) = 0.005 size p gives p = 110 / 1.005.
        ("short", (101, 109.4, 100.5, 109, ""), (109, 110, 108, 109.5, ""), 110 / 1.005),
    ],
)
def test_ten_x_is_liquidated_by_a_ten_percent_move_at_the_exact_liquidation_price(
    direction, survives, liquidates, liquidation_price
):
    rows: list[Row] = [(100, 101, 99, 100, "entry"), (100, 100.5, 99.5, 100, ""), survives]
    rows += [liquidates, FLAT]
    futures = FuturesConfig(leverage=10, direction=direction, funding_rate=0.0)
    report = half_in(futures, rows)
    (trade,) = report.result.trades
    units = 500 / (100 / 10 + 100 * 0.0004)
    assert (trade.exit_index, trade.exit_reason, trade.side) == (3, "liquidation", direction)
    assert trade.exit_price == pytest.approx(liquidation_price, rel=1e-12)
    # The margin is lost; the entry fee is the only fee (no fee to liquidate).
    assert trade.fee == pytest.approx(units * 100 * 0.0004, rel=1e-12)
    assert trade.pnl == pytest.approx(-500, rel=1e-12)
    assert report.metrics.final_equity == pytest.approx(500, rel=1e-12)
    assert report.metrics.liquidations == 1


def test_a_gap_through_the_liquidation_price_fills_at_the_open_and_loses_no_more_than_the_margin():
    rows: list[Row] = [(100, 101, 99, 100, "entry"), FLAT, (80, 81, 79, 80, ""), FLAT]
    report = half_in(FuturesConfig(leverage=10, funding_rate=0.0), rows)
    (trade,) = report.result.trades
    assert (trade.exit_price, trade.exit_reason) == (80, "liquidation")
    assert trade.pnl == pytest.approx(-500, rel=1e-12)


def test_after_a_liquidation_the_strategy_enters_again_with_what_is_left():
    rows: list[Row] = [
        (100, 101, 99, 100, "entry"),
        FLAT,
        (99, 99, 89, 90, "entry"),  # liquidated; a new entry signal at the close
        (90, 91, 89, 90, ""),
    ]
    report = half_in(FuturesConfig(leverage=10, funding_rate=0.0), rows)
    first, second = report.result.trades
    assert first.exit_reason == "liquidation"
    assert (second.entry_index, second.entry_price, second.exit_index) == (3, 90, None)
    assert second.size == pytest.approx(250 / (90 / 10 + 90 * 0.0004), rel=1e-12)


def test_an_all_in_liquidation_leaves_nothing_and_ends_the_run():
    rows: list[Row] = [(100, 101, 99, 100, "entry"), FLAT, (99, 99, 89, 90, "entry"), FLAT, FLAT]
    futures = FuturesConfig(leverage=10, funding_rate=0.0)
    report = futures_run(tape(rows), futures, fee=0.0004)
    (trade,) = report.result.trades
    assert trade.exit_reason == "liquidation" and report.result.halted_at == 2
    assert trade.pnl == pytest.approx(-1000, rel=1e-12)
    assert report.metrics.final_equity == pytest.approx(0, abs=1e-9)
    assert report.metrics.total_return == pytest.approx(-1, rel=1e-12)
    assert report.metrics.sharpe is not None  # from the bars that had equity


def test_a_liquidated_position_also_loses_the_funding_it_paid():
    rows: list[Row] = [
        (100, 101, 99, 100, "entry"),  # 06:00
        (100, 101, 99, 100, ""),  # 07:00: bought at 100
        (100, 100, 89, 90, ""),  # 08:00: funding on 100, then liquidated
        FLAT,
    ]
    futures = FuturesConfig(leverage=10, funding_rate=0.001)
    report = half_in(futures, rows, start="2024-01-01 06:00")
    (trade,) = report.result.trades
    funding = 0.001 * 500 / (100 / 10 + 100 * 0.0004) * 100
    assert trade.exit_reason == "liquidation"
    assert report.result.funding_paid == pytest.approx(funding, rel=1e-12)
    assert trade.pnl == pytest.approx(-500 - funding, rel=1e-12)
    assert report.metrics.final_equity == pytest.approx(500 - funding, rel=1e-12)


@pytest.mark.parametrize(
    ("settings", "crash", "exit_price", "reason"),
    [
        # The stop at 95 comes before the liquidation price (90.45) on the way down.
        ({"stop_loss": 0.05}, (99, 99.5, 89, 90, ""), 95, "stop_loss"),
        # So does a trailing stop: 101 (the earlier high) x 0.95.
        ({"trailing_stop": 0.05}, (99, 99.5, 89, 90, ""), 95.95, "trailing_stop"),
        # A stop at 80 comes after it: liquidated.
        ({"stop_loss": 0.2}, (99, 99.5, 79, 80, ""), 90 / 0.995, "liquidation"),
        # A bar that opens through the liquidation price liquidates, whatever the stop.
        ({"stop_loss": 0.05}, (89, 89.5, 85, 86, ""), 89, "liquidation"),
    ],
)
def test_a_stop_before_the_liquidation_price_saves_the_position(
    settings, crash, exit_price, reason
):
    rows: list[Row] = [(100, 101, 99, 100, "entry"), (100, 101, 99.5, 100, ""), crash, FLAT]
    report = half_in(FuturesConfig(leverage=10, funding_rate=0.0), rows, **settings)
    (trade,) = report.result.trades
    assert (trade.exit_index, trade.exit_reason) == (2, reason)
    assert trade.exit_price == pytest.approx(exit_price, rel=1e-12)
    if reason != "liquidation":
        units = 500 / (100 / 10 + 100 * 0.0004)
        expected = units * (exit_price - 100) - units * (100 + exit_price) * 0.0004
        assert trade.pnl == pytest.approx(expected, rel=1e-12)


# -- funding ----------------------------------------------------------------------------


def hourly_ramp(bars: int, exit_signal: int) -> CandleArrays:
    """Bar b opens at 100 + b (from 00:00 UTC); entry signal at bar 0, exit at `exit_signal`."""
    rows: list[Row] = []
    for b in range(bars):
        signal = "entry" if b == 0 else "exit" if b == exit_signal else ""
        rows.append((100 + b, 101 + b, 99 + b, 100 + b, signal))
    return tape(rows, start="2024-01-01 00:00")


@pytest.mark.parametrize(("interval", "hours"), [(8, [8, 16, 24]), (4, [4, 8, 12, 16, 20, 24])])
@pytest.mark.parametrize("direction", ["long", "short"])
def test_funding_is_paid_at_each_funding_time_on_hourly_bars(direction, interval, hours):
    # Held from bar 1's open (01:00) to bar 25's (01:00 the next day).
    futures = FuturesConfig(
        leverage=3, direction=direction, funding_rate=0.0001, funding_interval_hours=interval
    )
    report = futures_run(hourly_ramp(27, exit_signal=24), futures)
    (trade,) = report.result.trades
    units = 3 * 1000 / 101
    sign = 1 if direction == "long" else -1  # a short receives a positive rate
    funding = sign * sum(0.0001 * units * (100 + hour) for hour in hours)  # open at bar `hour`
    assert (trade.entry_index, trade.exit_index) == (1, 25)
    assert trade.pnl == pytest.approx(sign * units * (125 - 101) - funding, rel=1e-12)
    assert report.result.funding_paid == pytest.approx(funding, rel=1e-12)
    assert report.metrics.funding_paid == pytest.approx(funding, rel=1e-12)
    assert report.metrics.final_equity == pytest.approx(1000 + trade.pnl, rel=1e-12)


def test_funding_is_settled_at_the_open_before_an_exit_there_and_not_on_the_entry_bar():
    # Hourly funding: every bar from 2 (held since bar 1) to 25 (the exit's open) pays.
    futures = FuturesConfig(funding_rate=-0.0002, funding_interval_hours=1)
    report = futures_run(hourly_ramp(27, exit_signal=24), futures)
    units = 1000 / 101
    funding = sum(-0.0002 * units * (100 + b) for b in range(2, 26))  # negative: received
    assert report.result.funding_paid == pytest.approx(funding, rel=1e-12)
    assert report.result.trades[0].pnl == pytest.approx(units * 24 - funding, rel=1e-12)


def test_a_daily_bar_pays_each_eight_hour_funding_time_it_reaches():
    rows: list[Row] = [(100, 101, 99, 100, "entry"), FLAT, (102, 103, 101, 102, "exit")]
    rows += [(104, 105, 103, 104, ""), FLAT]
    report = futures_run(tape(rows, freq="D"), FuturesConfig(funding_rate=0.0001))
    units = 1000 / 100
    funding = 3 * 0.0001 * units * (102 + 104)  # bars 2 and 3, three funding times each
    assert report.result.funding_paid == pytest.approx(funding, rel=1e-12)


# -- the report and bad input -----------------------------------------------------------


def test_a_futures_report_names_the_side_of_each_trade_and_its_futures_figures():
    rows: list[Row] = [(100, 101, 99, 100, "entry"), FLAT, (99, 99, 89, 90, ""), FLAT]
    report = half_in(FuturesConfig(leverage=10, direction="long", funding_rate=0.0), rows)
    out = report.as_json()
    assert report.market == "futures"
    assert [t["side"] for t in out["trades"]] == ["long"]
    assert out["trades"][0]["exit_reason"] == "liquidation"
    assert out["metrics"]["liquidations"] == 1 and out["metrics"]["funding_paid"] == 0


@pytest.mark.parametrize(
    ("futures", "field"),
    [
        (FuturesConfig(leverage=0.5), "leverage"),
        (FuturesConfig(leverage=200), "leverage"),
        (FuturesConfig(leverage=math.nan), "leverage"),
        (FuturesConfig(direction="both"), "direction"),
        (FuturesConfig(funding_rate=0.05), "funding_rate"),
        (FuturesConfig(funding_interval_hours=3), "funding_interval_hours"),
        (FuturesConfig(maintenance_margin=0.5), "maintenance_margin"),
        # At 125x the margin is 0.8 % of the notional: a 1 % maintenance would liquidate at once.
        (FuturesConfig(leverage=125, maintenance_margin=0.01), "maintenance_margin"),
    ],
)
def test_bad_futures_settings_raise_naming_the_field(futures, field):
    with pytest.raises(SimulationConfigError, match=f"^{field} "):
        futures_run(tape([FLAT, FLAT]), futures)
