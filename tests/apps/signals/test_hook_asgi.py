"""The web process's ASGI application (config/asgi.py) as a sender reaches it: webhook
deliveries go straight to the receiver (apps/signals/asgi.py), anything else to Django."""

import importlib
import json
import threading

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator

from apps.audit.models import AuditEvent
from apps.signals import views
from apps.signals.models import WebhookEvent
from tests.apps.signals.conftest import alert, hook_path

# The receiver runs on its own threads: the rows must really commit to be seen there.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def web_app(monkeypatch):
    monkeypatch.setenv("DJANGO_DB_POOL_MAX", "0")  # settings are loaded: keep the env as it was
    return importlib.import_module("config.asgi").application


def call(app, method: str, path: str, body: bytes = b"", host: bytes = b"127.0.0.1"):
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", host), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }

    async def exchange():
        communicator = ApplicationCommunicator(app, scope)
        await communicator.send_input({"type": "http.request", "body": body})
        start = await communicator.receive_output(timeout=10)
        content = await communicator.receive_output(timeout=10)
        await communicator.wait(timeout=10)
        return start["status"], dict(start["headers"]), content["body"]

    return async_to_sync(exchange)()


def test_a_delivery_is_stored_audited_and_queued_before_the_answer(
    web_app, signal_bot, queued, monkeypatch
):
    _bot, secrets = signal_bot
    threads = []
    receive = views.webhook_receive

    def watched(**kwargs):
        threads.append(threading.current_thread().name)
        return receive(**kwargs)

    monkeypatch.setattr(views, "webhook_receive", watched)

    status, headers, body = call(
        web_app, "POST", hook_path(secrets.token), json.dumps(alert()).encode()
    )

    assert status == 200
    event = WebhookEvent.objects.get()
    assert json.loads(body) == {"accepted": True, "event": event.pk}
    assert queued == [event.pk]
    assert AuditEvent.objects.order_by("-seq").first().event_type == "signals.webhook.accepted"
    # SecurityMiddleware still answers for the receiver.
    assert headers[b"X-Content-Type-Options"] == b"nosniff"
    # It ran on the receiver's own threads, not through Django's middleware chain.
    assert len(threads) == 1 and threads[0].startswith("hook")


def test_a_wrong_passphrase_is_refused_there_too(web_app, signal_bot, queued):
    _bot, secrets = signal_bot
    body = json.dumps(alert(passphrase="guessed-passphrase")).encode()

    status, _headers, answer = call(web_app, "POST", hook_path(secrets.token), body)

    assert status == 401 and json.loads(answer)["field"] == "passphrase"
    assert queued == [] and WebhookEvent.objects.get().status == "rejected"


def test_an_unknown_host_is_refused_before_anything_is_stored(web_app, signal_bot, queued):
    _bot, secrets = signal_bot
    body = json.dumps(alert()).encode()

    status, _headers, _body = call(
        web_app, "POST", hook_path(secrets.token), body, host=b"evil.example"
    )

    assert status == 400
    assert not WebhookEvent.objects.exists() and queued == []


def test_other_requests_still_go_through_django(web_app, signal_bot):
    _bot, secrets = signal_bot

    status, _headers, _body = call(web_app, "GET", hook_path(secrets.token))

    assert status == 405  # the view's require_POST, reached through Django's handler
