"""SEC-4: django-axes locks logins by IP and by username after 5 failures."""

import pytest
from asgiref.sync import async_to_sync
from axes.models import AccessAttempt
from django.test import AsyncClient, Client
from django.urls import reverse

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
LOGIN = reverse("accounts:login")
FAILURE_LIMIT = 5
LOCKED_OUT_TEXT = "Too many failed login attempts"
WRONG_PASSWORD = "wrong-password-123"


def _attempt(email, password=WRONG_PASSWORD, **extra):
    return Client().post(LOGIN, {"username": email, "password": password}, **extra)


def _fail(times, email="alice@example.com", **extra) -> list[int]:
    return [_attempt(email, **extra).status_code for _ in range(times)]


def test_the_sixth_attempt_is_refused_with_429_even_with_the_right_password(alice, settings):
    assert settings.AXES_FAILURE_LIMIT == FAILURE_LIMIT
    assert _fail(FAILURE_LIMIT - 1) == [200] * (FAILURE_LIMIT - 1)
    _fail(1)

    client = Client()
    response = client.post(LOGIN, {"username": "alice@example.com", "password": PASSWORD})

    assert response.status_code == 429
    assert LOCKED_OUT_TEXT in response.content.decode()
    assert reverse("accounts:password_reset") in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_four_failures_do_not_lock_the_right_password_out(alice):
    _fail(FAILURE_LIMIT - 1)

    assert _attempt("alice@example.com", PASSWORD).status_code == 302


def test_the_username_stays_locked_from_another_ip(alice):
    _fail(FAILURE_LIMIT, REMOTE_ADDR="203.0.113.7")

    response = _attempt("alice@example.com", PASSWORD, REMOTE_ADDR="198.51.100.20")

    assert response.status_code == 429
    # The lock is by username, whatever case it is typed in.
    assert _attempt("ALICE@example.com", PASSWORD, REMOTE_ADDR="198.51.100.21").status_code == 429


def test_the_ip_is_locked_for_every_username(alice, charlie):
    for n in range(FAILURE_LIMIT):
        _attempt(f"guess{n}@example.com", REMOTE_ADDR="203.0.113.8")

    assert _attempt("charlie@example.com", PASSWORD, REMOTE_ADDR="203.0.113.8").status_code == 429
    assert _attempt("charlie@example.com", PASSWORD, REMOTE_ADDR="203.0.113.9").status_code == 302


def test_a_spoofed_forwarded_for_header_does_not_change_the_counted_ip(alice):
    # Different usernames each time, so only the IP lock can trigger; each attempt claims a
    # new client address in X-Forwarded-For, which an untrusted peer may not set.
    for n in range(FAILURE_LIMIT):
        _attempt(f"guess{n}@example.com", HTTP_X_FORWARDED_FOR=f"192.0.2.{n + 1}")

    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"127.0.0.1"}
    response = _attempt("alice@example.com", PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.200")
    assert response.status_code == 429


def test_behind_one_trusted_proxy_the_forwarded_client_ip_is_counted(alice, settings):
    settings.AXES_IPWARE_PROXY_COUNT = 1
    proxy = {"REMOTE_ADDR": "10.0.0.1"}
    # The client's own left-hand entries are spoofable; the proxy's right-hand one is not.
    for n in range(FAILURE_LIMIT):
        _attempt(f"guess{n}@example.com", HTTP_X_FORWARDED_FOR=f"6.6.6.{n}, 203.0.113.50", **proxy)

    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.50"}
    locked = _attempt("alice@example.com", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.50", **proxy)
    other_client = _attempt(
        "alice@example.com", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.51", **proxy
    )
    assert locked.status_code == 429
    assert other_client.status_code == 302


def test_the_lockout_also_answers_429_under_asgi(alice):
    # Production serves Django through daphne, where axes runs its async middleware path.
    _fail(FAILURE_LIMIT)

    response = async_to_sync(AsyncClient().post)(
        LOGIN, {"username": "alice@example.com", "password": PASSWORD}
    )

    assert response.status_code == 429
    assert LOCKED_OUT_TEXT in response.content.decode()
