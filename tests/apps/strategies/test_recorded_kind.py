"""The recorded-alerts kind: a read-only snapshot of a signal bot's alerts. The editor and
the API refuse to write it, optimisations and bots refuse to run it (naming the field),
and a backtest takes it only on the symbols it holds alerts for."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from apps.backtests.services import BacktestInvalid
from apps.bots.selectors import bot_create_choices
from apps.bots.services.create import bot_create
from apps.common.errors import InputInvalid
from apps.optimizations.services import OptimizationInvalid, optimization_task_create
from apps.strategies.models import Strategy, StrategyVersion
from apps.strategies.services import strategy_recorded_snapshot
from apps.strategies.specs import StrategyInvalid
from tests.apps.backtests.conftest import import_pair_candles, pair_input, task_create
from tests.apps.optimizations.conftest import optimization_input
from tests.apps.signals.conftest import make_signal_bot

pytestmark = pytest.mark.django_db

ALERTS = {
    "BTC/USDT": [
        {"time": "2020-09-10T05:20:00+00:00", "action": "buy", "size_mode": "", "size": None},
        {"time": "2020-09-12T13:59:00+00:00", "action": "close", "size_mode": "", "size": None},
    ]
}


@pytest.fixture
def recorded(alice) -> StrategyVersion:
    bot, _secrets = make_signal_bot(alice, name="TV bot")
    return strategy_recorded_snapshot(bot=bot, acting_user=alice, alerts=ALERTS)


def test_a_snapshot_is_one_strategy_per_bot_listed_by_the_bots_name(alice, alice_client, recorded):
    strategy = recorded.strategy
    assert (strategy.kind, strategy.name, strategy.owner) == (
        "recorded",
        "Recorded alerts of TV bot",
        alice,
    )
    assert recorded.recorded_symbols == ["BTC/USDT"]
    listed = alice_client.get(reverse("strategies:list")).content.decode()
    assert "Recorded alerts of TV bot" in listed and "Recorded alerts</td>" in listed
    version_page = alice_client.get(reverse("strategies:version_detail", args=[recorded.pk]))
    assert b'id="recorded-alerts"' in version_page.content
    assert b"2020-09-10T05:20:00+00:00" in version_page.content
    with pytest.raises(StrategyInvalid) as empty:
        strategy_recorded_snapshot(bot=strategy.signal_bot, acting_user=alice, alerts={})
    assert empty.value.field == "alerts"
    bad = {"BTC/USDT": [{"time": "yesterday", "action": "buy"}]}
    with pytest.raises(StrategyInvalid) as refused:
        strategy_recorded_snapshot(bot=strategy.signal_bot, acting_user=alice, alerts=bad)
    assert refused.value.field == "alerts.BTC/USDT"
    assert StrategyVersion.objects.count() == 1


def test_the_editor_refuses_to_edit_the_kind(alice_client, recorded):
    strategy = recorded.strategy
    edit = reverse("strategies:edit", args=[strategy.pk])
    detail = reverse("strategies:detail", args=[strategy.pk])
    shown = alice_client.get(edit, follow=True)
    assert shown.redirect_chain == [(detail, 302)]
    assert b"Recorded alerts are read-only" in shown.content
    page = alice_client.get(detail).content.decode()
    assert 'id="read-only-kind"' in page and edit not in page
    posted = alice_client.post(edit, {"note": "mine now", "script": "x"})
    assert posted.status_code == 302 and StrategyVersion.objects.count() == 1
    # It is not a kind one can create either.
    chooser = alice_client.get(reverse("strategies:create"), {"kind": "recorded"})
    assert b"How do you want to describe it?" in chooser.content
    assert b"?kind=script" in chooser.content and b"?kind=recorded" not in chooser.content
    assert not Strategy.objects.exclude(pk=strategy.pk).exists()


def test_the_api_refuses_to_write_the_kind(alice_client, recorded):
    created = alice_client.post(
        reverse("api-strategies"),
        {"name": "Forged", "kind": "recorded", "params": {"alerts": ALERTS}},
        content_type="application/json",
    )
    assert created.status_code == 400
    assert created.json()["errors"][0]["path"] == "kind"
    assert "read-only" in created.json()["errors"][0]["message"]
    url = reverse("api-strategy-version-create", args=[recorded.strategy_id])
    added = alice_client.post(url, {"params": {"alerts": {}}}, content_type="application/json")
    assert added.status_code == 400 and added.json()["errors"][0]["path"] == "kind"
    assert StrategyVersion.objects.count() == 1


def test_optimisation_refuses_it_naming_the_field(alice, recorded):
    with pytest.raises(OptimizationInvalid) as refused:
        optimization_task_create(owner=alice, data=optimization_input(recorded))
    assert refused.value.field == "strategy_version"
    assert "recorded alerts have no parameters to search" in refused.value.message


def test_a_live_bot_refuses_it_naming_the_field(alice, recorded):
    bot, _secrets = make_signal_bot(alice, name="Other")
    with pytest.raises(InputInvalid) as refused:
        bot_create(
            owner=alice,
            name="Replay my alerts",
            strategy_version_id=recorded.pk,
            account_id=bot.account_id,
            symbols=["BTC/USDT"],
        )
    assert refused.value.field == "strategy_version_id"
    assert "replay over stored candles (a replay feed) or in a backtest" in refused.value.message
    offered = bot_create_choices(user=alice)["versions"]
    assert recorded.pk not in {version.pk for version in offered}


def test_a_backtest_takes_it_only_on_its_symbols_on_spot_with_market_orders(alice, recorded):
    import_pair_candles()
    start, end = datetime(2020, 9, 1, tzinfo=UTC), datetime(2020, 10, 1, tzinfo=UTC)
    with pytest.raises(BacktestInvalid) as other_symbol:
        task_create(alice, [pair_input(recorded, symbol="BNB/USDT")], start=start, end=end)
    assert other_symbol.value.field == "pairs[0].symbol"
    assert "holds no recorded alerts for BNB/USDT" in other_symbol.value.message
    with pytest.raises(BacktestInvalid) as limit:
        task_create(alice, [pair_input(recorded, order_type="limit")], start=start, end=end)
    assert limit.value.field == "pairs[0].order_type"
    with pytest.raises(BacktestInvalid) as futures:
        task_create(alice, [pair_input(recorded)], start=start, end=end, market_type="futures")
    assert futures.value.field == "pairs[0].strategy_version"
    task = task_create(alice, [pair_input(recorded)], start=start, end=end)
    assert task.pairs.get().strategy_version == recorded
