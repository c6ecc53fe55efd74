"""The REST API: token or session auth, write-only keys, 400s that name the field."""

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.services import api_token_create
from apps.exchanges.models import ExchangeAccount
from apps.exchanges.services import exchange_account_create
from tests.apps.exchanges.conftest import audit_types, new_key

LIST_URL = reverse("api-exchange-account-list")


def _detail_url(account_id: int) -> str:
    return reverse("api-exchange-account-detail", args=[account_id])


@pytest.fixture
def alice_api(alice) -> Client:
    _token, raw = api_token_create(user=alice, name="tests")
    return Client(headers={"Authorization": f"Bearer {raw}"})


def test_create_a_live_account_with_a_token(alice_api, alice, fake_exchange):
    api_key, api_secret = new_key()
    payload = {
        "exchange": "bybit",
        "label": "Bybit",
        "mode": "live",
        "api_key": api_key,
        "api_secret": api_secret,
    }

    response = alice_api.post(LIST_URL, payload, content_type="application/json")

    assert response.status_code == 201
    body = response.json()
    assert body["key_last4"] == api_key[-4:]
    assert "api_key" not in body and "api_secret" not in body
    assert api_key not in response.content.decode()
    assert ExchangeAccount.objects.get(owner=alice).api_secret == api_secret


def test_create_a_paper_account_with_balances_over_the_session(alice_client, alice):
    payload = {
        "exchange": "okx",
        "label": "Paper",
        "mode": "paper",
        "initial_balances": {"usdt": "500.5", "ETH": "2"},
    }

    response = alice_client.post(LIST_URL, payload, content_type="application/json")

    assert response.status_code == 201
    assert response.json()["paper_balances"] == {
        "ETH": "2.000000000000000000",
        "USDT": "500.500000000000000000",
    }


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"exchange": "nope", "label": "x", "mode": "paper"}, "exchange"),
        ({"exchange": "binance", "label": "x", "mode": "demo"}, "mode"),
        ({"exchange": "binance", "mode": "paper"}, "label"),
        ({"exchange": "binance", "label": "x", "mode": "live", "api_secret": "s" * 10}, "api_key"),
        ({"exchange": "binance", "label": "x", "mode": "live", "api_key": "k" * 10}, "api_secret"),
        (
            {"exchange": "binance", "label": "x", "mode": "paper", "initial_balances": {"B": "-1"}},
            "initial_balances",
        ),
    ],
)
def test_bad_input_is_a_400_that_names_the_field(alice_api, payload, field):
    response = alice_api.post(LIST_URL, payload, content_type="application/json")

    assert response.status_code == 400
    assert field in response.json()
    assert not ExchangeAccount.objects.exists()


def test_a_withdrawal_key_is_a_400_on_api_key(alice_api, fake_exchange):
    fake_exchange.key_permissions.can_withdraw = True
    api_key, api_secret = new_key()
    payload = {
        "exchange": "binance",
        "label": "x",
        "mode": "live",
        "api_key": api_key,
        "api_secret": api_secret,
    }

    response = alice_api.post(LIST_URL, payload, content_type="application/json")

    assert response.status_code == 400
    assert "can withdraw funds" in response.json()["api_key"][0]
    assert not ExchangeAccount.objects.exists()
    assert audit_types() == ["exchange_account.key_refused"]


def test_list_retrieve_and_delete(alice_api, alice, charlie):
    mine = exchange_account_create(owner=alice, exchange="binance", label="Mine", mode="paper")
    exchange_account_create(owner=charlie, exchange="binance", label="Theirs", mode="paper")

    listed = alice_api.get(LIST_URL).json()
    assert [row["label"] for row in listed["results"]] == ["Mine"]
    assert alice_api.get(_detail_url(mine.pk)).json()["label"] == "Mine"

    response = alice_api.delete(_detail_url(mine.pk))

    assert response.status_code == 204
    assert not ExchangeAccount.objects.filter(pk=mine.pk).exists()
    assert audit_types() == [
        "exchange_account.created",
        "exchange_account.created",
        "exchange_account.deleted",
    ]


def test_charlie_gets_404_on_alices_account(charlie_client, alice):
    account = exchange_account_create(owner=alice, exchange="binance", label="A", mode="paper")
    before = ExchangeAccount.objects.filter(pk=account.pk).values().get()

    assert charlie_client.get(_detail_url(account.pk)).status_code == 404
    assert charlie_client.delete(_detail_url(account.pk)).status_code == 404
    assert charlie_client.get(LIST_URL).json()["results"] == []
    assert ExchangeAccount.objects.filter(pk=account.pk).values().get() == before


def test_anonymous_requests_are_refused(client):
    assert client.get(LIST_URL).status_code in (401, 403)
