"""Detail, key replacement and deletion pages; charlie never sees alice's account."""

import pytest
from django.urls import reverse

from apps.exchanges.models import ExchangeAccount
from apps.exchanges.services import exchange_account_create
from tests.apps.exchanges.conftest import audit_types, exchange_events, new_key


@pytest.fixture
def live_account(alice, fake_exchange):
    api_key, api_secret = new_key()
    return exchange_account_create(
        owner=alice,
        exchange="binance",
        label="Binance main",
        mode="live",
        api_key=api_key,
        api_secret=api_secret,
    )


@pytest.fixture
def paper_account(alice):
    return exchange_account_create(owner=alice, exchange="bybit", label="Paper", mode="paper")


def _row(account: ExchangeAccount) -> dict:
    return ExchangeAccount.objects.filter(pk=account.pk).values().get()


def test_the_empty_list_invites_a_first_connection(alice_client):
    page = alice_client.get(reverse("exchanges:list")).content.decode()

    assert "Connect your first exchange" in page
    assert reverse("exchanges:create") in page


def test_the_list_shows_only_my_accounts(alice_client, paper_account, charlie):
    exchange_account_create(owner=charlie, exchange="okx", label="Charlie's", mode="paper")

    page = alice_client.get(reverse("exchanges:list")).content.decode()

    assert "Paper" in page
    assert "Charlie&#x27;s" not in page and "Charlie's" not in page
    assert "Connect your first exchange" not in page


def test_the_detail_page_shows_the_masked_key_only(alice_client, live_account):
    account = ExchangeAccount.objects.get(pk=live_account.pk)

    page = alice_client.get(reverse("exchanges:detail", args=[account.pk])).content.decode()

    assert f"••••{account.api_key[-4:]}" in page
    assert account.api_key not in page
    assert account.api_secret not in page
    assert 'data-mode="live"' in page


def test_the_detail_page_of_a_paper_account_lists_its_balances(alice_client, paper_account):
    page = alice_client.get(reverse("exchanges:detail", args=[paper_account.pk])).content.decode()

    assert "<td>USDT</td><td>10000</td>" in page


def test_replacing_the_key_checks_it_and_audits(alice_client, live_account, fake_exchange):
    api_key, api_secret = new_key()
    url = reverse("exchanges:rotate_keys", args=[live_account.pk])

    response = alice_client.post(url, {"api_key": api_key, "api_secret": api_secret})

    assert response.status_code == 302
    account = ExchangeAccount.objects.get(pk=live_account.pk)
    assert (account.api_key, account.api_secret, account.key_last4) == (
        api_key,
        api_secret,
        api_key[-4:],
    )
    assert audit_types() == ["exchange_account.created", "exchange_account.keys_rotated"]
    assert exchange_events().last().data["key_last4"] == "••••" + api_key[-4:]


def test_a_replacement_key_that_can_withdraw_is_refused(alice_client, live_account, fake_exchange):
    before = _row(live_account)
    fake_exchange.key_permissions.can_withdraw = True
    api_key, api_secret = new_key()
    url = reverse("exchanges:rotate_keys", args=[live_account.pk])

    response = alice_client.post(url, {"api_key": api_key, "api_secret": api_secret})

    assert "This key can withdraw funds" in response.content.decode()
    assert _row(live_account) == before
    assert audit_types() == ["exchange_account.created", "exchange_account.key_refused"]


def test_the_delete_page_asks_first_then_deletes_on_post(alice_client, paper_account):
    url = reverse("exchanges:delete", args=[paper_account.pk])

    confirm = alice_client.get(url)
    assert "Delete “Paper”?" in confirm.content.decode()
    assert ExchangeAccount.objects.filter(pk=paper_account.pk).exists()

    response = alice_client.post(url)

    assert response.status_code == 302
    assert not ExchangeAccount.objects.filter(pk=paper_account.pk).exists()
    assert audit_types() == ["exchange_account.created", "exchange_account.deleted"]
    assert exchange_events().last().data["account_id"] == paper_account.pk


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("exchanges:detail", "get"),
        ("exchanges:rotate_keys", "get"),
        ("exchanges:rotate_keys", "post"),
        ("exchanges:delete", "get"),
        ("exchanges:delete", "post"),
    ],
)
def test_charlie_gets_404_on_alices_account_pages(charlie_client, live_account, name, method):
    before = _row(live_account)
    api_key, api_secret = new_key()

    response = getattr(charlie_client, method)(
        reverse(name, args=[live_account.pk]), {"api_key": api_key, "api_secret": api_secret}
    )

    assert response.status_code == 404
    assert _row(live_account) == before
    assert audit_types() == ["exchange_account.created"]


def test_pages_need_a_login(client, paper_account):
    response = client.get(reverse("exchanges:detail", args=[paper_account.pk]))

    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]


@pytest.mark.parametrize("ip_restricted", [True, False])
def test_the_detail_page_suggests_an_ip_allowlist_only_when_the_key_has_none(
    alice, alice_client, fake_exchange, ip_restricted
):
    fake_exchange.key_permissions.ip_restricted = ip_restricted
    api_key, api_secret = new_key()
    account = exchange_account_create(
        owner=alice,
        exchange="bybit",
        label="Bybit",
        mode="live",
        api_key=api_key,
        api_secret=api_secret,
    )

    page = alice_client.get(reverse("exchanges:detail", args=[account.pk])).content.decode()

    assert account.key_ip_restricted is ip_restricted
    assert ('id="no-ip-allowlist"' in page) is not ip_restricted
