"""Connecting accounts through the web form: paper, live against the fake, and refusals."""

from decimal import Decimal

import pytest
from django.db import connection
from django.urls import reverse

from apps.exchanges.models import ExchangeAccount, PaperBalance
from tests.apps.exchanges.conftest import audit_types, exchange_events, live_form

CREATE_URL = reverse("exchanges:create")


def test_the_create_page_lists_popular_exchanges_first_and_hides_key_values(alice_client):
    page = alice_client.get(CREATE_URL).content.decode()
    positions = [page.index(f'<option value="{name}"') for name in ("binance", "bybit", "okx")]
    assert positions == sorted(positions)
    assert page.index('<option value="coinbase"') < page.index('<option value="alpaca"')
    assert 'type="password" name="api_key"' in page


def test_a_paper_account_gets_its_initial_balances(alice_client, alice):
    form = {"exchange": "kraken", "label": "Paper", "mode": "paper"}
    response = alice_client.post(CREATE_URL, {**form, "initial_balances": "usdt=2500, BTC=0.25"})

    account = ExchangeAccount.objects.get(owner=alice)
    assert response.status_code == 302
    assert response["Location"] == reverse("exchanges:detail", args=[account.pk])
    balances = dict(account.paper_balances.values_list("asset", "amount"))
    assert balances == {"USDT": Decimal("2500"), "BTC": Decimal("0.25")}
    assert account.api_key is None
    assert account.key_fingerprint == ""


def test_a_paper_account_defaults_to_ten_thousand_usdt(alice_client, alice):
    form = {"exchange": "binance", "label": "Paper", "mode": "paper", "initial_balances": ""}
    alice_client.post(CREATE_URL, form)

    balances = PaperBalance.objects.filter(account__owner=alice)
    assert list(balances.values_list("asset", "amount")) == [("USDT", Decimal("10000"))]


@pytest.mark.parametrize("exchange", ["binance", "bybit"])
def test_a_live_key_is_checked_with_the_exchange_then_stored_encrypted(
    alice_client, alice, fake_exchange, exchange
):
    form = live_form(exchange)
    response = alice_client.post(CREATE_URL, form)

    assert response.status_code == 302
    account = ExchangeAccount.objects.get(owner=alice)
    assert (account.api_key, account.api_secret) == (form["api_key"], form["api_secret"])
    assert account.key_last4 == form["api_key"][-4:]
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key, api_secret FROM exchanges_exchangeaccount")
        stored_key, stored_secret = cursor.fetchone()
    for stored in (stored_key, stored_secret):
        assert stored.startswith("gAAAAA")
        assert form["api_key"] not in stored
        assert form["api_secret"] not in stored
    # The balance call and the permission check reached the fake, signed with this key.
    permission_path = {
        "binance": "/sapi/v1/account/apiRestrictions",
        "bybit": "/v5/user/query-api",
    }[exchange]
    signed = [r for r in fake_exchange.requests if r.path == permission_path]
    key_header = {"binance": "x-mbx-apikey", "bybit": "x-bapi-api-key"}[exchange]
    assert signed
    assert signed[0].headers[key_header] == form["api_key"]
    assert audit_types() == ["exchange_account.created"]


@pytest.mark.parametrize("exchange", ["binance", "bybit"])
def test_a_key_that_can_withdraw_is_refused_but_the_refusal_is_audited(
    alice_client, alice, fake_exchange, exchange
):
    fake_exchange.key_permissions.can_withdraw = True
    form = live_form(exchange)

    response = alice_client.post(CREATE_URL, form)

    assert response.status_code == 200
    assert "This key can withdraw funds. Create a trade-only key" in response.content.decode()
    assert not ExchangeAccount.objects.exists()
    event = exchange_events().get()
    assert event.event_type == "exchange_account.key_refused"
    assert event.owner_id == alice.pk
    assert event.data["exchange"] == exchange
    assert event.data["key_last4"] == "••••" + form["api_key"][-4:]
    assert form["api_key"] not in str(event.data)


def test_a_key_the_exchange_rejects_is_not_stored(alice_client, fake_exchange):
    fake_exchange.fail_auth = True

    response = alice_client.post(CREATE_URL, live_form("bybit"))

    assert "The exchange refused the API key" in response.content.decode()
    assert not ExchangeAccount.objects.exists()
    assert audit_types() == []


def test_an_unreachable_exchange_is_a_clear_error(alice_client, settings):
    settings.EXCHANGE_BASE_URL_OVERRIDE = "http://127.0.0.1:9"  # discard port: nothing listens
    settings.EXCHANGE_TIMEOUT_MS = 2_000

    response = alice_client.post(CREATE_URL, live_form("binance"))

    assert "The exchange could not be reached" in response.content.decode()
    assert not ExchangeAccount.objects.exists()


def test_a_testnet_key_uses_the_sandbox_without_a_permission_endpoint(
    alice_client, alice, fake_exchange
):
    # Binance's spot testnet has no /sapi (and no withdrawals), so only the balance is read.
    response = alice_client.post(CREATE_URL, live_form("binance", mode="testnet"))

    assert response.status_code == 302
    assert ExchangeAccount.objects.get(owner=alice).mode == "testnet"
    assert "/api/v3/account" in fake_exchange.paths()
    assert "/sapi/v1/account/apiRestrictions" not in fake_exchange.paths()


def _errors_for(response, field: str) -> list[str]:
    return response.context["form"].errors.get(field, [])


def test_an_unknown_exchange_is_a_form_error_on_exchange(alice_client):
    response = alice_client.post(CREATE_URL, live_form("notanexchange", mode="paper"))

    assert response.status_code == 200
    assert _errors_for(response, "exchange")
    assert not ExchangeAccount.objects.exists()
    assert audit_types() == []


@pytest.mark.parametrize("missing", ["api_key", "api_secret"])
def test_live_needs_both_key_and_secret(alice_client, fake_exchange, missing):
    response = alice_client.post(CREATE_URL, live_form("binance", **{missing: ""}))

    assert "testnet and live accounts need one" in " ".join(_errors_for(response, missing))
    assert not ExchangeAccount.objects.exists()
    assert fake_exchange.requests == []


def test_live_on_an_exchange_without_a_permission_check_is_refused(alice_client, fake_exchange):
    response = alice_client.post(CREATE_URL, live_form("kraken"))

    assert "paper mode" in " ".join(_errors_for(response, "exchange"))
    assert not ExchangeAccount.objects.exists()
    assert fake_exchange.requests == []


def test_the_same_key_twice_is_refused_before_calling_the_exchange(
    alice_client, alice, fake_exchange
):
    form = live_form("binance")
    alice_client.post(CREATE_URL, form)
    fake_exchange.requests.clear()

    response = alice_client.post(CREATE_URL, {**form, "label": "again"})

    assert "already connected" in " ".join(_errors_for(response, "api_key"))
    assert ExchangeAccount.objects.filter(owner=alice).count() == 1
    assert fake_exchange.requests == []
    assert audit_types() == ["exchange_account.created"]


def test_the_quota_is_enforced(alice_client, alice):
    alice.max_exchange_accounts = 1
    alice.save(update_fields=["max_exchange_accounts"])
    paper = {"exchange": "binance", "label": "one", "mode": "paper"}
    alice_client.post(CREATE_URL, paper)

    response = alice_client.post(CREATE_URL, {**paper, "label": "two"})

    assert "limit of 1 exchange accounts" in " ".join(response.context["form"].non_field_errors())
    assert list(ExchangeAccount.objects.values_list("label", flat=True)) == ["one"]


@pytest.mark.parametrize(
    ("balances", "fragment"),
    [("USDT=ten", "not a number"), ("BTC", "ASSET=amount"), ("USDT=-5", "zero or more")],
)
def test_bad_initial_balances_are_a_form_error(alice_client, balances, fragment):
    form = {"exchange": "binance", "label": "p", "mode": "paper", "initial_balances": balances}

    response = alice_client.post(CREATE_URL, form)

    assert fragment in " ".join(_errors_for(response, "initial_balances"))
    assert not ExchangeAccount.objects.exists()


def test_an_htmx_post_with_errors_renders_only_the_form_partial(alice_client):
    form = {"exchange": "binance", "label": "", "mode": "paper"}

    response = alice_client.post(CREATE_URL, form, headers={"HX-Request": "true"})

    page = response.content.decode()
    assert response.status_code == 200
    assert page.lstrip().startswith('<article id="account-form">')
    assert "<html" not in page
    assert "This field is required." in page
