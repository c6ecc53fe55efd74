import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.models import ApiToken, User
from apps.accounts.services import api_token_create
from tests.apps.accounts.conftest import audit_events
from tests.conftest import PASSWORD
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client() -> Client:
    operator = UserFactory(email="ops@example.com", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(operator)
    return client


def test_the_user_list_shows_emails_and_quotas(operator_client, alice):
    response = operator_client.get(reverse("admin:accounts_user_changelist") + "?q=alice")

    page = response.content.decode()
    assert response.status_code == 200
    assert "alice@example.com" in page
    assert "column-max_bots" in page
    assert "charlie@example.com" not in page


def test_an_operator_raises_a_users_limits(operator_client, alice):
    url = reverse("admin:accounts_user_change", args=[alice.pk])
    old = (alice.max_bots, alice.max_exchange_accounts, alice.max_api_tokens)
    page = operator_client.get(url).content.decode()
    assert "Limits" in page
    form = {
        "email": alice.email,
        "display_name": "",
        "max_bots": 25,
        "max_exchange_accounts": 4,
        "max_api_tokens": 3,
        "is_active": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
    }

    response = operator_client.post(url, form)

    assert response.status_code == 302
    alice.refresh_from_db()
    assert (alice.max_bots, alice.max_exchange_accounts, alice.max_api_tokens) == (25, 4, 3)
    assert alice.check_password(PASSWORD)
    [event] = audit_events("user.limits_changed")
    assert event.actor_id == User.objects.get(email="ops@example.com").pk
    assert event.owner_id == alice.pk
    assert event.data == {
        "max_bots": {"old": old[0], "new": 25},
        "max_exchange_accounts": {"old": old[1], "new": 4},
        "max_api_tokens": {"old": old[2], "new": 3},
    }


def test_saving_a_user_without_changing_limits_writes_no_limits_event(operator_client, alice):
    url = reverse("admin:accounts_user_change", args=[alice.pk])
    form = {
        "email": alice.email,
        "display_name": "Renamed by ops",
        "max_bots": alice.max_bots,
        "max_exchange_accounts": alice.max_exchange_accounts,
        "max_api_tokens": alice.max_api_tokens,
        "is_active": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
    }

    assert operator_client.post(url, form).status_code == 302
    alice.refresh_from_db()
    assert alice.display_name == "Renamed by ops"
    assert not audit_events("user.limits_changed").exists()


def test_an_operator_adds_a_user_by_email(operator_client):
    response = operator_client.post(
        reverse("admin:accounts_user_add"),
        {
            "email": "new@example.com",
            "usable_password": "true",
            "password1": "a-fine-passphrase-31",
            "password2": "a-fine-passphrase-31",
        },
    )

    assert response.status_code == 302
    assert User.objects.get(email="new@example.com").check_password("a-fine-passphrase-31")


def test_the_token_admin_never_shows_the_hash_and_cannot_add(operator_client, alice):
    token, raw = api_token_create(user=alice, name="ci")

    page = operator_client.get(reverse("admin:accounts_apitoken_change", args=[token.pk]))

    assert page.status_code == 200
    assert token.key_hash not in page.content.decode()
    assert raw not in page.content.decode()
    assert operator_client.get(reverse("admin:accounts_apitoken_add")).status_code == 403


def test_the_revoke_action_goes_through_the_service(operator_client, alice):
    token, _raw = api_token_create(user=alice, name="ci")

    response = operator_client.post(
        reverse("admin:accounts_apitoken_changelist"),
        {"action": "revoke_tokens", "_selected_action": [token.pk]},
    )

    assert response.status_code == 302
    token.refresh_from_db()
    assert not token.is_active
    [event] = audit_events("api_token.revoked")
    assert event.owner_id == alice.pk
    assert event.actor_id == User.objects.get(email="ops@example.com").pk
    assert ApiToken.objects.filter(revoked_at__isnull=True).count() == 0
