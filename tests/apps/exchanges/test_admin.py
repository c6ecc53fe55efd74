"""Operators see accounts and balances in the admin, never a key, and delete through the service."""

import pytest
from django.test import Client
from django.urls import reverse

from apps.exchanges.models import ExchangeAccount
from apps.exchanges.services import exchange_account_create
from tests.apps.exchanges.conftest import audit_types
from tests.factories import UserFactory


@pytest.fixture
def operator_client(db) -> Client:
    client = Client()
    client.force_login(UserFactory(email="ops@example.com", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def paper_account(alice):
    return exchange_account_create(
        owner=alice, exchange="kraken", label="Kraken paper", mode="paper"
    )


def test_the_changelist_searches_by_owner_email(operator_client, paper_account, charlie):
    exchange_account_create(owner=charlie, exchange="okx", label="Charlie okx", mode="paper")
    url = reverse("admin:exchanges_exchangeaccount_changelist")

    page = operator_client.get(url, {"q": "alice@"}).content.decode()

    assert "Kraken paper" in page
    assert "Charlie okx" not in page


def test_the_change_page_has_no_key_fields_and_shows_balances(operator_client, paper_account):
    url = reverse("admin:exchanges_exchangeaccount_change", args=[paper_account.pk])

    response = operator_client.get(url)

    page = response.content.decode()
    assert response.status_code == 200
    for field in ("api_key", "api_secret", "passphrase"):
        assert f'name="{field}"' not in page
        assert f"field-{field}" not in page
    assert "USDT" in page


def test_deleting_in_the_admin_is_audited(operator_client, paper_account):
    url = reverse("admin:exchanges_exchangeaccount_delete", args=[paper_account.pk])

    response = operator_client.post(url, {"post": "yes"})

    assert response.status_code == 302
    assert not ExchangeAccount.objects.filter(pk=paper_account.pk).exists()
    assert audit_types() == ["exchange_account.created", "exchange_account.deleted"]
