import pytest
from django.urls import reverse

from tests.apps.accounts.conftest import audit_events

pytestmark = pytest.mark.django_db
PROFILE = reverse("accounts:profile")


def test_the_profile_shows_the_account_and_its_limits_read_only(alice_client, alice):
    alice.max_bots, alice.max_exchange_accounts, alice.max_api_tokens = 7, 3, 4
    alice.save()

    page = alice_client.get(PROFILE).content.decode()

    assert "alice@example.com" in page
    assert alice.date_joined.strftime("%Y-%m-%d") in page
    for label, value in (("Bots", 7), ("Exchange accounts", 3), ("API tokens", 4)):
        assert f'<th scope="row">{label}</th><td>{value}</td>' in page
    assert 'name="max_bots"' not in page
    assert "contact an operator to raise them" in page
    assert reverse("accounts:password_change") in page
    assert reverse("accounts:tokens") in page


def test_updating_the_display_name_is_saved_and_audited(alice_client, alice):
    response = alice_client.post(PROFILE, {"display_name": "  Alice Trader "})

    assert response.status_code == 302
    assert response["Location"] == PROFILE
    alice.refresh_from_db()
    assert alice.display_name == "Alice Trader"
    [event] = audit_events("user.profile_updated")
    assert event.actor_id == alice.pk
    assert event.data == {"display_name": {"old": "", "new": "Alice Trader"}}


def test_an_unchanged_display_name_writes_no_audit_event(alice_client, alice):
    alice_client.post(PROFILE, {"display_name": ""})

    assert not audit_events("user.profile_updated").exists()


def test_a_too_long_display_name_is_refused_and_nothing_changes(alice_client, alice):
    response = alice_client.post(PROFILE, {"display_name": "x" * 101})

    assert response.status_code == 200
    assert "Ensure this value has at most 100 characters" in response.content.decode()
    alice.refresh_from_db()
    assert alice.display_name == ""
    assert not audit_events("user.profile_updated").exists()


def test_an_htmx_update_returns_the_form_partial(alice_client, alice):
    response = alice_client.post(PROFILE, {"display_name": "Al"}, HTTP_HX_REQUEST="true")

    page = response.content.decode()
    assert response.status_code == 200
    assert page.lstrip().startswith('<form id="profile-form"')
    assert "Saved." in page
    alice.refresh_from_db()
    assert alice.display_name == "Al"
