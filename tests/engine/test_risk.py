"""Pre-trade risk: sizing, limits with named rejections, stages, kill switches, profiles."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from apps.engine.risk import (
    AccountSnapshot,
    KillSwitch,
    RiskConfigError,
    RiskLimits,
    RiskState,
    Stage,
    risk_check,
    risk_flatten,
    risk_observe,
    risk_profile,
    risk_resume,
)
from apps.engine.strategies.base import OrderIntent
from apps.engine.types import Balance, Instrument

D = Decimal
NOON = datetime(2024, 6, 3, 12, tzinfo=UTC)
BTC = Instrument("BTC/USDT", tick_size=D("0.01"), step_size=D("0.00001"), min_notional=D(5))
ETH = Instrument("ETH/USDT", tick_size=D("0.01"), step_size=D("0.0001"), min_notional=D(5))
BUY = OrderIntent("buy", tag="entry")
SELL = OrderIntent("sell", tag="exit")
CONSERVATIVE = risk_profile("conservative")


def account(usdt: str = "10000", btc: str = "0", eth: str = "0", locked_btc: str = "0"):
    balances = {"USDT": Balance("USDT", D(usdt))}
    if D(btc):
        balances["BTC"] = Balance("BTC", D(btc), D(locked_btc))
    if D(eth):
        balances["ETH"] = Balance("ETH", D(eth))
    return AccountSnapshot("USDT", balances, {"BTC/USDT": D(50000), "ETH/USDT": D(2500)})


def check(intents, limits=CONSERVATIVE, state=None, acct=None, **kwargs):
    return risk_check(
        intents,
        instrument=kwargs.pop("instrument", BTC),
        limits=limits,
        state=state or RiskState(),
        account=acct or account(),
        id_prefix="b7-1717416000",
        **kwargs,
    )


def test_the_conservative_default_risks_a_quarter_percent_at_the_stop_within_the_cap() -> None:
    # 0.25 % of 10,000 at a 2 % stop is 1,250 of BTC; the 10 % position cap makes it 1,000.
    (request,) = check([BUY]).requests
    assert (request.side, request.type, request.quote_qty, request.qty) == (
        "buy",
        "market",
        D(1000),
        None,
    )
    assert request.client_order_id == "b7-1717416000-0"
    loose = risk_profile("conservative", position_pct="0.25")
    assert check([BUY], loose).requests[0].quote_qty == D(1250)


@pytest.mark.parametrize(
    ("limits", "quote_qty"),
    [
        (RiskLimits.unlimited(), D(10000)),
        (RiskLimits.unlimited("percent", position_pct=D("0.3")), D(3000)),
        (RiskLimits.unlimited("fixed", fixed_amount=D(250)), D(250)),
    ],
)
def test_sizing_rules_for_market_buys(limits: RiskLimits, quote_qty: Decimal) -> None:
    assert check([BUY], limits).requests[0].quote_qty == quote_qty


def test_a_limit_buy_is_sized_in_base_units_at_its_price() -> None:
    (request,) = check([OrderIntent("buy", "limit", limit_price=40000.004)]).requests
    assert (request.limit_price, request.qty) == (D("40000.00"), D("0.025"))


def test_an_explicit_size_over_the_position_cap_is_refused_not_shrunk() -> None:
    result = check([OrderIntent("buy", size=0.1)])  # 5,000 of BTC against a 1,000 cap
    (rejection,) = result.rejections
    assert (rejection.limit, rejection.index, result.requests) == ("max_position_size", 0, ())
    assert "10.00 % of equity (1000.00)" in rejection.reason


def test_the_position_cap_counts_what_is_already_held() -> None:
    held = account(usdt="9500", btc="0.01")  # 500 of BTC already
    (request,) = check([BUY], acct=held).requests
    assert request.quote_qty == D(500)
    (rejection,) = check([BUY], acct=account(usdt="9000", btc="0.02")).rejections
    assert rejection.limit == "max_position_size"


def test_sells_sell_the_free_position_and_never_more() -> None:
    held = account(usdt="0", btc="0.3", locked_btc="0.1")
    (everything,) = check([SELL], acct=held).requests
    assert everything.qty == D("0.2")
    (half,) = check([OrderIntent("sell", fraction=0.5)], acct=held).requests
    assert half.qty == D("0.1")
    (capped,) = check([OrderIntent("sell", size=5.0)], acct=held).requests
    assert capped.qty == D("0.2")
    (nothing,) = check([SELL]).rejections
    assert nothing.limit == "no_position"


def test_max_trades_per_day_counts_accepted_buys_and_resets_next_day() -> None:
    limits = risk_profile("conservative", max_trades_per_day=2, sizing="fixed", fixed_amount="100")
    state = risk_observe(RiskState(), limits, equity=D(10000), now=NOON)
    result = check([BUY, BUY, BUY], limits, state)
    assert len(result.requests) == 2
    assert [r.limit for r in result.rejections] == ["max_trades_per_day"]
    assert result.state.trades_today == 2
    tomorrow = risk_observe(result.state, limits, equity=D(10000), now=NOON + timedelta(days=1))
    assert tomorrow.trades_today == 0 and len(check([BUY], limits, tomorrow).requests) == 1


def test_a_daily_loss_breach_allows_only_exits_until_the_next_day() -> None:
    state = risk_observe(RiskState(), CONSERVATIVE, equity=D(10000), now=NOON)
    state = risk_observe(state, CONSERVATIVE, equity=D(9790), now=NOON + timedelta(hours=3))
    assert state.stage is Stage.REDUCING and state.breach is not None
    assert state.breach.limit == "daily_loss_limit"
    assert "2.10 % below today's start 10000.00 (limit 2.00 %)" in state.breach.reason
    held = account(usdt="9000", btc="0.0158")
    result = check([SELL, BUY], state=state, acct=held)
    assert [r.side for r in result.requests] == ["sell"]
    (rejection,) = result.rejections
    assert rejection.limit == "stage" and "only exits" in rejection.reason
    next_day = risk_observe(state, CONSERVATIVE, equity=D(9790), now=NOON + timedelta(days=1))
    assert (next_day.stage, next_day.breach) == (Stage.ACTIVE, None)


def test_a_drawdown_breach_halts_everything_until_an_explicit_resume() -> None:
    state = risk_observe(RiskState(), CONSERVATIVE, equity=D(12000), now=NOON)
    state = risk_observe(state, CONSERVATIVE, equity=D(10700), now=NOON + timedelta(days=3))
    assert state.stage is Stage.HALTED and state.breach is not None
    assert state.breach.limit == "max_drawdown"
    later = risk_observe(state, CONSERVATIVE, equity=D(10700), now=NOON + timedelta(days=9))
    assert later.stage is Stage.HALTED
    result = check([SELL, BUY], state=later, acct=account(btc="0.1"))
    assert result.requests == ()
    assert {r.limit for r in result.rejections} == {"stage"}
    resumed = risk_resume(later, equity=D(10700))
    assert resumed.stage is Stage.ACTIVE
    again = risk_observe(resumed, CONSERVATIVE, equity=D(10700), now=NOON + timedelta(days=9))
    assert again.stage is Stage.ACTIVE


def test_the_accounts_stage_binds_every_bot_of_the_account() -> None:
    account_state = RiskState(stage=Stage.REDUCING)
    result = check([BUY], account_state=account_state)
    assert [r.limit for r in result.rejections] == ["stage"]


@pytest.mark.parametrize(
    ("kill", "scope"),
    [
        (KillSwitch(global_=True), "global"),
        (KillSwitch(user=True), "user"),
        (KillSwitch(bot=True), "bot"),
    ],
)
def test_any_kill_switch_refuses_every_intent(kill: KillSwitch, scope: str) -> None:
    result = check([BUY, SELL], acct=account(btc="0.1"), kill=kill)
    assert result.requests == ()
    assert [r.reason for r in result.rejections] == [f"the {scope} kill switch is on"] * 2


def test_the_kill_switch_flattens_every_free_position() -> None:
    requests = risk_flatten(
        account(btc="0.3", locked_btc="0.1", eth="2"), [BTC, ETH], id_prefix="k"
    )
    assert [(r.symbol, r.side, r.qty, r.reason) for r in requests] == [
        ("BTC/USDT", "sell", D("0.2"), "kill_switch"),
        ("ETH/USDT", "sell", D(2), "kill_switch"),
    ]


def test_instruments_outside_the_whitelist_are_refused() -> None:
    limits = risk_profile("balanced", whitelist=("ETH/USDT",))
    (rejection,) = check([BUY], limits).rejections
    assert rejection.limit == "instrument_whitelist"
    assert check([BUY], limits, instrument=ETH).requests


def test_the_exposure_limit_counts_every_position_of_the_account() -> None:
    # 4,500 of ETH held; conservative allows 50 % of 10,000 in positions.
    acct = account(usdt="5500", eth="1.8")
    (rejection,) = check([BUY], acct=acct).rejections
    assert rejection.limit == "max_exposure" and "5500.00" in rejection.reason


def test_leverage_caps_the_positions_even_with_exposure_switched_off() -> None:
    limits = RiskLimits.unlimited("fixed", fixed_amount=D(3000))
    (rejection,) = check([BUY], limits, acct=account(usdt="2000", eth="3.2")).rejections
    assert rejection.limit == "leverage"


def test_a_buy_below_the_minimum_notional_is_refused() -> None:
    limits = RiskLimits.unlimited("fixed", fixed_amount=D(3))
    (rejection,) = check([BUY], limits).rejections
    assert rejection.limit == "min_notional"


def test_cancels_pass_through_even_when_halted() -> None:
    result = check(
        [OrderIntent.cancel(OrderIntent("buy", tag="grid-3"))], state=RiskState(Stage.HALTED)
    )
    assert (result.cancels, result.rejections) == (("grid-3",), ())


def test_the_risk_state_survives_a_json_round_trip() -> None:
    state = risk_observe(RiskState(), CONSERVATIVE, equity=D(10000), now=NOON)
    state = risk_observe(state, CONSERVATIVE, equity=D(8000), now=NOON)
    assert RiskState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


@pytest.mark.parametrize(
    ("profile", "overrides", "field", "words"),
    [
        ("reckless", {}, "risk_profile", "unknown risk profile"),
        ("conservative", {"risk_per_trade": "0.01"}, "risk_per_trade", "above the conservative"),
        ("balanced", {"max_drawdown": None}, "max_drawdown", "cannot be switched off"),
        ("aggressive", {"leverage": "10"}, "leverage", "cap of 5"),
        ("balanced", {"max_leverage": "10"}, "max_leverage", "not a risk setting"),
        ("balanced", {"stop_loss": "1.5"}, "stop_loss", r"fraction in \(0, 1\]"),
        ("balanced", {"risk_per_trade": "lots"}, "risk_per_trade", "must be a number"),
        ("balanced", {"max_trades_per_day": "2.5"}, "max_trades_per_day", "whole number"),
        ("balanced", {"daily_loss_stage": "PAUSED"}, "daily_loss_stage", "one of ACTIVE"),
        ("conservative", {"drawdown_stage": "ACTIVE"}, "drawdown_stage", "not softened"),
        ("balanced", {"drawdown_stage": "REDUCING"}, "drawdown_stage", "not softened"),
        ("aggressive", {"daily_loss_stage": "ACTIVE"}, "daily_loss_stage", "not softened"),
    ],
)
def test_bad_profile_settings_name_the_field(profile, overrides, field, words) -> None:
    with pytest.raises(RiskConfigError, match=words) as caught:
        risk_profile(profile, **overrides)
    assert caught.value.field == field


def test_every_profile_value_can_be_overridden_within_its_cap() -> None:
    limits = risk_profile(
        "balanced", risk_per_trade="0.005", stop_loss="0.01", max_trades_per_day=3, leverage=2
    )
    assert (limits.risk_per_trade, limits.stop_loss, limits.max_trades_per_day) == (
        D("0.005"),
        D("0.01"),
        3,
    )
    assert limits.leverage == D(2) and limits.max_leverage == D(3)
