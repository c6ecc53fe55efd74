"""Login by email, audit of auth events, and session security (SEC-3)."""

import json

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from apps.audit.models import AuditEvent
from tests.apps.accounts.conftest import audit_events
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
LOGIN = reverse("accounts:login")
LOGOUT = reverse("accounts:logout")
PROFILE = reverse("accounts:profile")


def _login(client, email, password=PASSWORD, **extra):
    return client.post(LOGIN, {"username": email, "password": password}, **extra)


def test_the_login_page_asks_for_an_email_and_links_signup_and_reset(client):
    page = client.get(LOGIN).content.decode()
    assert 'type="email"' in page
    assert ">Email" in page
    assert reverse("accounts:signup") in page
    assert reverse("accounts:password_reset") in page


@pytest.mark.parametrize("typed_email", ["alice@example.com", "  Alice@Example.com"])
def test_a_user_logs_in_with_their_email(client, alice, typed_email):
    response = _login(client, typed_email)

    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:home")
    assert client.session["_auth_user_id"] == str(alice.pk)
    [event] = audit_events("user.logged_in")
    assert event.actor_id == alice.pk
    assert event.data == {"ip": "127.0.0.1"}


@pytest.mark.django_db(transaction=True)
def test_a_failed_login_is_audited_and_committed_without_the_password(alice):
    # No test transaction wraps this one: the audit row must commit on its own.
    wrong_password = "Tr0ub4dor&3-not-it"
    client = Client()

    response = _login(client, "ALICE@example.com", password=wrong_password, REMOTE_ADDR="10.1.2.3")

    assert response.status_code == 200
    assert "Please enter a correct email and password." in response.content.decode()
    assert "_auth_user_id" not in client.session
    [event] = AuditEvent.objects.filter(event_type="user.login_failed")
    assert event.data == {"email": "alice@example.com", "ip": "10.1.2.3"}
    assert event.owner_id == alice.pk
    assert event.actor_id is None
    stored = json.dumps(event.data)
    assert wrong_password not in stored
    assert "password" not in stored


def test_a_failed_login_for_an_unknown_email_has_no_owner(client):
    _login(client, "nobody@example.com", password="whatever-it-is-42")

    [event] = audit_events("user.login_failed")
    assert event.owner_id is None
    assert event.data["email"] == "nobody@example.com"


def test_the_session_key_changes_at_login(client, alice):
    # A session that exists before login, as an attacker would plant it (session fixation).
    session = client.session
    session["planted"] = "yes"
    session.save()
    planted_key = session.session_key
    client.cookies[settings.SESSION_COOKIE_NAME] = planted_key

    _login(client, "alice@example.com")

    new_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert new_key != planted_key
    assert not Session.objects.filter(session_key=planted_key).exists()
    assert Session.objects.get(session_key=new_key).get_decoded()["_auth_user_id"] == str(alice.pk)


def test_logout_is_post_only_and_deletes_the_server_side_session(client, alice):
    _login(client, "alice@example.com")
    key = client.session.session_key
    assert Session.objects.filter(session_key=key).exists()

    assert client.get(LOGOUT).status_code == 405
    assert Session.objects.filter(session_key=key).exists()

    response = client.post(LOGOUT)

    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:landing")
    assert not Session.objects.filter(session_key=key).exists()
    assert audit_events("user.logged_out").get().actor_id == alice.pk
    assert client.get(PROFILE).status_code == 302


def test_a_password_change_logs_out_the_other_sessions_but_keeps_this_one(alice):
    laptop, phone = Client(), Client()
    _login(laptop, "alice@example.com")
    _login(phone, "alice@example.com")
    assert phone.get(PROFILE).status_code == 200
    new_password = "a-much-better-passphrase-77"

    response = laptop.post(
        reverse("accounts:password_change"),
        {"old_password": PASSWORD, "new_password1": new_password, "new_password2": new_password},
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:password_change_done")
    assert laptop.get(PROFILE).status_code == 200
    phone_response = phone.get(PROFILE)
    assert phone_response.status_code == 302
    assert phone_response["Location"].startswith(reverse("accounts:login"))
    alice.refresh_from_db()
    assert alice.check_password(new_password)
    [event] = audit_events("user.password_changed")
    assert event.actor_id == alice.pk
    assert event.data == {}


def test_a_wrong_old_password_changes_nothing(alice_client, alice):
    response = alice_client.post(
        reverse("accounts:password_change"),
        {"old_password": "not-my-password", "new_password1": "x" * 20, "new_password2": "x" * 20},
    )

    assert response.status_code == 200
    assert "Your old password was entered incorrectly." in response.content.decode()
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)
    assert not audit_events("user.password_changed").exists()


def test_a_weak_new_password_is_refused(alice_client, alice):
    response = alice_client.post(
        reverse("accounts:password_change"),
        {"old_password": PASSWORD, "new_password1": "password", "new_password2": "password"},
    )

    assert "This password is too common." in response.content.decode()
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


def test_account_pages_send_anonymous_visitors_to_login(client):
    for name in ("profile", "tokens", "password_change"):
        response = client.get(reverse(f"accounts:{name}"))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))
