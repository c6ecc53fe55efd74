"""The bots API: create with the page's validation (400 naming the field, 429 at the
ceiling, nothing written), read a bot, its orders, fills and logs; a refused action is 409."""

from datetime import timedelta
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from apps.bots.models import Bot, BotFill, BotLog, BotOrder, BotRun
from tests.apps.bots.conftest import REPLAY_FROM, make_bot, make_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(alice):
    client = APIClient()
    client.force_authenticate(alice)
    return client


def payload(version, account, **overrides):
    data = {
        "name": "API bot",
        "strategy_version_id": version.pk,
        "account_id": account.pk,
        "symbols": ["BTC/USDT"],
        "timeframe": "1h",
        "feed": "replay",
        "replay_start": "2021-01-01T00:00:00Z",
        "risk_profile": "balanced",
        "risk_overrides": {"stop_loss": "0.04"},
        "leverage": "2",
    }
    return data | overrides


def test_create_then_read_and_list(api, alice_version, alice_account, candles):
    response = api.post("/api/bots/", payload(alice_version, alice_account), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["symbols"] == ["BTC/USDT"] and body["leverage"] == "2.00"
    assert body["risk_overrides"] == {"stop_loss": "0.04"} and body["run"] is None
    assert api.get(f"/api/bots/{body['id']}/").json()["name"] == "API bot"
    assert [bot["id"] for bot in api.get("/api/bots/").json()["results"]] == [body["id"]]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"symbols": ["DOGE/USDT"]}, "symbols"),
        ({"risk_overrides": {"risk_per_trade": "0.5"}}, "risk_overrides.risk_per_trade"),
        ({"leverage": "9"}, "leverage"),
        ({"account_id": 999_999}, "account_id"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    api, alice_version, alice_account, candles, overrides, field
):
    response = api.post(
        "/api/bots/", payload(alice_version, alice_account, **overrides), format="json"
    )

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert not Bot.objects.exists()


def test_another_users_version_is_a_400_not_found(api, charlie, alice_account, candles):
    charlies = make_version(charlie)

    response = api.post("/api/bots/", payload(charlies, alice_account), format="json")

    assert response.status_code == 400
    assert response.json() == {
        "strategy_version_id": [f"Strategy version {charlies.pk} not found."]
    }


def test_the_ceiling_is_a_429(api, alice, alice_version, alice_account, candles):
    alice.max_bots = 1
    alice.save(update_fields=["max_bots"])
    first = api.post("/api/bots/", payload(alice_version, alice_account), format="json")
    assert first.status_code == 201

    response = api.post(
        "/api/bots/", payload(alice_version, alice_account, name="Two"), format="json"
    )

    assert response.status_code == 429
    assert "limit of 1 bots" in response.json()["detail"]
    assert Bot.objects.count() == 1


def test_orders_fills_and_logs(api, alice, candles):
    bot = make_bot(alice)
    run = BotRun.objects.create(bot=bot, status=BotRun.Status.RUNNING)
    order = BotOrder.objects.create(
        bot=bot, run=run, account=bot.account, client_order_id="c1", symbol="BTC/USDT",
        side="buy", type="market", status=BotOrder.Status.FILLED, reason="signal",
    )  # fmt: skip
    BotFill.objects.create(
        bot=bot, order=order, account=bot.account, fill_id="f1", symbol="BTC/USDT", side="buy",
        qty=Decimal(1), price=Decimal(100), fee=Decimal("0.1"), fee_asset="USDT",
        executed_at=REPLAY_FROM + timedelta(hours=1),
    )  # fmt: skip
    BotLog.objects.create(bot=bot, run=run, source="risk", message="trade limit reached")

    orders = api.get(f"/api/bots/{bot.pk}/orders/").json()["results"]
    fills = api.get(f"/api/bots/{bot.pk}/fills/").json()["results"]
    logs = api.get(f"/api/bots/{bot.pk}/logs/").json()["results"]

    assert [(o["client_order_id"], o["status"], o["reason"]) for o in orders] == [
        ("c1", "FILLED", "signal")
    ]
    assert [(f["fill_id"], f["client_order_id"], f["price"]) for f in fills] == [
        ("f1", "c1", "100.000000000000000000")
    ]
    assert [(line["source"], line["message"]) for line in logs] == [("risk", "trade limit reached")]
    assert api.get(f"/api/bots/{bot.pk}/").json()["run"]["status"] == "RUNNING"


def test_an_action_the_state_refuses_is_a_409(api, alice, candles):
    bot = make_bot(alice)

    response = api.post(f"/api/bots/{bot.pk}/pause/")

    assert response.status_code == 409
    assert response.json() == {"detail": "The bot is not running."}


def test_the_bot_list_costs_the_same_queries_for_2_or_10_bots(
    api, django_assert_max_num_queries, alice, alice_version, alice_account, candles
):
    def grow_to(count: int) -> None:
        for index in range(Bot.objects.filter(owner=alice).count(), count):
            bot = make_bot(alice, alice_version, alice_account, name=f"Bot {index}")
            BotRun.objects.create(bot=bot, status=BotRun.Status.STOPPED)

    grow_to(2)
    with django_assert_max_num_queries(8) as two:
        assert len(api.get("/api/bots/").json()["results"]) == 2
    grow_to(10)
    with django_assert_max_num_queries(len(two.captured_queries)):
        listed = api.get("/api/bots/").json()["results"]
    assert len(listed) == 10 and all(bot["run"]["status"] == "STOPPED" for bot in listed)
