"""Password reset by email, sent through a real SMTP server on 127.0.0.1."""

import re
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.tasks import user_password_reset_email_send
from tests.apps.accounts.conftest import audit_events
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
RESET = reverse("accounts:password_reset")
NEW_PASSWORD = "brand-new-passphrase-2026"


@pytest.fixture
def reset_email_queue(monkeypatch) -> list[dict]:
    """The reset-email tasks enqueued on commit; a test runs them as a worker would."""
    queued: list[dict] = []
    monkeypatch.setattr(
        user_password_reset_email_send, "delay", lambda **kwargs: queued.append(kwargs)
    )
    return queued


@pytest.fixture
def request_reset(reset_email_queue, django_capture_on_commit_callbacks):
    def request(client, email):
        # The task is enqueued on commit; run the callbacks as a real commit would, then do
        # the worker's part: call the task itself (never eager Celery).
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(RESET, {"email": email})
        while reset_email_queue:
            user_password_reset_email_send(**reset_email_queue.pop(0))
        return response

    return request


def _reset_link(message) -> str:
    body = message.get_payload(decode=True).decode()
    match = re.search(r"https?://\S+/accounts/reset/\S+/\S+/", body)
    assert match, body
    return match.group(0)


def test_a_reset_email_leads_to_a_new_password(client, alice, smtp_inbox, request_reset):
    other_session = Client()
    other_session.force_login(alice)

    response = request_reset(client, "Alice@Example.com")

    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:password_reset_done")
    [message] = smtp_inbox.messages
    assert message["To"] == "alice@example.com"
    assert message["Subject"] == "Reset your tradeloop password"
    link = _reset_link(message)
    assert link.startswith("http://127.0.0.1:8000/")  # SITE_URL, not the request's Host
    assert audit_events("user.password_reset_requested").get().owner_id == alice.pk

    form_page = client.get(urlsplit(link).path, follow=True)
    assert form_page.status_code == 200
    assert form_page.context["validlink"] is True
    set_password_url = form_page.redirect_chain[-1][0]
    done = client.post(
        set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )

    assert done.status_code == 302
    assert done["Location"] == reverse("accounts:password_reset_complete")
    assert audit_events("user.password_reset_completed").get().owner_id == alice.pk
    fresh = Client()
    login = fresh.post(
        reverse("accounts:login"), {"username": "alice@example.com", "password": NEW_PASSWORD}
    )
    assert login.status_code == 302
    assert fresh.session["_auth_user_id"] == str(alice.pk)
    old = Client().post(
        reverse("accounts:login"), {"username": "alice@example.com", "password": PASSWORD}
    )
    assert old.status_code == 200
    # Sessions opened with the old password end with it.
    assert other_session.get(reverse("accounts:profile")).status_code == 302
    # The link works once.
    assert client.get(urlsplit(link).path, follow=True).context["validlink"] is False


def test_an_unknown_email_gets_the_same_answer_and_no_email(
    client, alice, smtp_inbox, request_reset, reset_email_queue, django_capture_on_commit_callbacks
):
    known = request_reset(Client(), "alice@example.com")
    assert len(smtp_inbox.messages) == 1

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        unknown = client.post(RESET, {"email": "stranger@example.com"})
    assert callbacks == []
    assert reset_email_queue == []

    assert unknown.status_code == known.status_code == 302
    assert unknown["Location"] == known["Location"]
    assert len(smtp_inbox.messages) == 1
    done_page = client.get(unknown["Location"]).content.decode()
    assert "Check your inbox" in done_page
    assert audit_events("user.password_reset_requested").count() == 1


def test_a_deactivated_account_gets_no_reset_email(client, alice, smtp_inbox, request_reset):
    alice.is_active = False
    alice.save(update_fields=["is_active"])

    request_reset(client, "alice@example.com")

    assert smtp_inbox.messages == []


def test_a_tampered_link_is_refused(client, alice, smtp_inbox, request_reset):
    request_reset(client, "alice@example.com")
    path = urlsplit(_reset_link(smtp_inbox.messages[0])).path
    tampered = re.sub(r"/reset/([^/]+)/[^/]+/", r"/reset/\1/abc-0123456789abcdef/", path)

    page = client.get(tampered, follow=True)

    assert page.context["validlink"] is False
    assert "This link does not work" in page.content.decode()
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)
