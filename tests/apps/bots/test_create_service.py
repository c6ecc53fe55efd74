"""bot_create / bot_update: every bad input is refused naming its field, and nothing is
written (no bot, no audit event)."""

from datetime import timedelta
from decimal import Decimal

import pytest

from apps.audit.models import AuditEvent
from apps.bots.models import Bot, BotRun
from apps.bots.services.create import REPLAY_DEFAULT_CANDLES, BotQuotaExceeded, bot_update
from apps.common.errors import ApplicationError, InputInvalid
from apps.exchanges.models import ExchangeAccount
from apps.strategies.models import StrategyVersion
from tests.apps.bots.conftest import (
    REPLAY_FROM,
    make_bot,
    make_paper_account,
    make_version,
    store_candles,
)

pytestmark = pytest.mark.django_db


def _refused(call, **kwargs) -> dict[str, str]:
    bots, events = Bot.objects.count(), AuditEvent.objects.count()
    with pytest.raises(InputInvalid) as caught:
        call(**kwargs)
    assert (Bot.objects.count(), AuditEvent.objects.count()) == (bots, events)
    return dict(caught.value.problems)


def test_a_valid_replay_bot_is_created_and_audited(alice, alice_version, alice_account, candles):
    bot = make_bot(alice, alice_version, alice_account, risk_overrides={"stop_loss": "0.03"})

    assert bot.market_exchange == "binance"
    assert bot.risk_overrides == {"stop_loss": "0.03"}
    event = AuditEvent.objects.get(event_type="bot.created")
    assert event.data["bot_id"] == bot.pk


def test_an_unknown_symbol_names_the_symbols_field(alice, alice_version, alice_account, candles):
    problems = _refused(
        make_bot, owner=alice, version=alice_version, account=alice_account, symbols=["DOGE/USDT"]
    )

    assert "DOGE/USDT" in problems["symbols"]
    assert "no stored 1h candles" in problems["symbols"]


def test_a_live_feed_symbol_must_be_base_quote(alice, alice_version, alice_account):
    problems = _refused(
        make_bot, owner=alice, version=alice_version, account=alice_account, feed="live",
        symbols=["BTCUSDT"],
    )  # fmt: skip

    assert "BASE/QUOTE" in problems["symbols"]


def test_symbols_must_share_one_quote(alice, alice_version, alice_account):
    problems = _refused(
        make_bot, owner=alice, version=alice_version, account=alice_account, feed="live",
        symbols=["BTC/USDT", "ETH/BTC"],
    )  # fmt: skip

    assert "one quote currency" in problems["symbols"]


def test_a_strategy_version_of_another_user_is_not_found(alice, charlie, alice_account, candles):
    charlies = make_version(charlie, name="Charlie's secret")

    problems = _refused(make_bot, owner=alice, version=charlies, account=alice_account)

    assert problems["strategy_version_id"] == f"Strategy version {charlies.pk} not found."


def test_an_account_of_another_user_is_not_found(alice, charlie, alice_version, candles):
    charlies = make_paper_account(charlie)

    problems = _refused(make_bot, owner=alice, version=alice_version, account=charlies)

    assert problems["account_id"] == f"Exchange account {charlies.pk} not found."


def test_an_override_above_the_profile_cap_names_the_setting(
    alice, alice_version, alice_account, candles
):
    problems = _refused(
        make_bot, owner=alice, version=alice_version, account=alice_account,
        risk_overrides={"risk_per_trade": "0.05"},
    )  # fmt: skip

    message = problems["risk_overrides.risk_per_trade"]
    assert "above the conservative profile's cap of 0.005" in message


def test_leverage_above_the_profile_max_is_refused(alice, alice_version, alice_account, candles):
    problems = _refused(
        make_bot, owner=alice, version=alice_version, account=alice_account,
        risk_profile="balanced", leverage=Decimal(4),
    )  # fmt: skip

    assert "cap of 3" in problems["leverage"]


def test_a_live_account_is_refused_for_now(alice, alice_version, candles):
    live = ExchangeAccount.objects.create(
        owner=alice, exchange="binance", label="Live", mode=ExchangeAccount.Mode.LIVE
    )

    problems = _refused(make_bot, owner=alice, version=alice_version, account=live)

    assert "paper" in problems["account_id"]


def test_every_problem_is_reported_at_once(alice, alice_account, candles):
    problems = _refused(
        make_bot, owner=alice, version=make_version(alice), account=alice_account, name=" ",
        timeframe="7x", cooldown_bars=-1,
    )  # fmt: skip

    assert {"name", "timeframe", "cooldown_bars"} <= set(problems)


def test_the_bot_ceiling_refuses_with_a_quota_error(alice, alice_version, alice_account, candles):
    alice.max_bots = 1
    alice.save(update_fields=["max_bots"])
    make_bot(alice, alice_version, alice_account)
    before = AuditEvent.objects.count()

    with pytest.raises(BotQuotaExceeded, match="limit of 1 bots"):
        make_bot(alice, alice_version, alice_account, name="Second")

    assert Bot.objects.filter(owner=alice).count() == 1
    assert AuditEvent.objects.count() == before


def test_a_replay_without_a_start_begins_before_the_last_candle(alice, alice_version):
    store_candles(symbol="BNB/USDT", count=REPLAY_DEFAULT_CANDLES + 10)

    bot = make_bot(alice, alice_version, symbols=["BNB/USDT"], replay_start=None)

    assert bot.replay_start == REPLAY_FROM + timedelta(hours=10)


def test_update_checks_like_create_and_audits(alice, alice_version, alice_account, candles):
    bot = make_bot(alice, alice_version, alice_account)

    with pytest.raises(InputInvalid) as caught:
        bot_update(bot=bot, acting_user=alice, risk_overrides={"max_drawdown": "0.9"})
    assert "risk_overrides.max_drawdown" in dict(caught.value.problems)

    bot_update(bot=bot, acting_user=alice, name="Renamed", cooldown_bars=3)
    bot.refresh_from_db()
    assert (bot.name, bot.cooldown_bars) == ("Renamed", 3)
    assert AuditEvent.objects.filter(event_type="bot.updated").count() == 1


def test_update_refuses_while_a_run_is_active(alice, alice_version, alice_account, candles):
    bot = make_bot(alice, alice_version, alice_account)
    bot.runs.create(status="RUNNING")

    with pytest.raises(ApplicationError, match="Stop the bot"):
        bot_update(bot=bot, acting_user=alice, name="Renamed")


def _unrunnable_version(owner, version):
    """A template version whose template the bot engine does not know (an engine from
    before a template was withdrawn, or a hand-made row)."""
    return StrategyVersion.objects.create(
        strategy=version.strategy,
        number=version.number + 1,
        template="pair_spread",
        params={},
        entry=None,
        exit=None,
        content_hash="0" * 64,
        created_by=owner,
    )


def test_a_version_the_bot_engine_refuses_names_the_field(
    alice, alice_version, alice_account, candles
):
    version = _unrunnable_version(alice, alice_version)
    problems = _refused(make_bot, owner=alice, version=version, account=alice_account)

    assert "cannot run as a bot" in problems["strategy_version_id"]
    assert not BotRun.objects.exists()


def test_parameters_the_strategy_refuses_name_the_params_field(
    alice, alice_version, alice_account, candles
):
    problems = _refused(
        make_bot, owner=alice, version=alice_version, account=alice_account,
        params={"fast": "quick"},
    )  # fmt: skip

    assert "params" in problems and "strategy_version_id" not in problems
