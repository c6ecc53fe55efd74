"""The signal bot pages and API: create, the secrets shown once, templates, history,
rotation, and a stranger's 404."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.bots.models import Bot, BotRun
from apps.exchanges.services import exchange_account_create
from apps.signals.models import WebhookEvent
from tests.apps.signals.conftest import alert, make_signal_bot, post_alert, run_queued

pytestmark = pytest.mark.django_db


@pytest.fixture
def paper(alice):
    return exchange_account_create(owner=alice, exchange="binance", label="Paper", mode="paper")


def test_empty_states(alice_client):
    page = alice_client.get(reverse("signals:list"))
    assert page.status_code == 200 and b'id="no-signal-bots"' in page.content


def create(client, account, **fields):
    data = {
        "name": "My TV bot",
        "account": account.pk,
        "symbols": "BTC/USDT, BINANCE:ETHUSDT",
        "risk_profile": "balanced",
        "size_mode": "quote",
        "size_value": "50",
        **fields,
    }
    return client.post(reverse("signals:create"), data)


def test_create_shows_the_url_and_passphrase_once_then_a_new_user_trades_with_it(
    alice_client, paper, client, queued, django_capture_on_commit_callbacks
):
    page = create(alice_client, paper)
    assert page.status_code == 201
    html = page.content.decode()
    bot = Bot.objects.get(kind="signal")
    assert bot.symbols == ["BTC/USDT", "ETH/USDT"] and bot.strategy_version is None
    assert bot.runs.get().status == BotRun.Status.RUNNING
    url = re.search(r'<pre id="hook-url">([^<]+)</pre>', html).group(1)
    passphrase = re.search(r'<pre id="hook-passphrase">([^<]+)</pre>', html).group(1)
    assert "{{strategy.order.action}}" in html and "{{timenow}}" in html
    assert "{{strategy.market_position}}" in html and "{{close}}" in html

    token = url.rstrip("/").rsplit("/", 1)[1]
    with django_capture_on_commit_callbacks(execute=True):
        reply = post_alert(client, token, alert(passphrase=passphrase))
    assert reply.status_code == 200
    run_queued(queued)

    again = alice_client.get(reverse("signals:detail", args=[bot.pk])).content.decode()
    assert token not in again and passphrase not in again
    assert (
        f'id="event-{WebhookEvent.objects.get().pk}"' in again and "Sent to the exchange" in again
    )


def test_create_errors_name_the_field(alice_client, paper):
    page = create(alice_client, paper, symbols="NOT A MARKET", size_value="")
    assert page.status_code == 200 and not Bot.objects.exists()
    assert b'id="error-symbols"' in page.content and b'id="error-size_value"' in page.content


def test_a_live_or_foreign_account_is_refused(alice_client, charlie):
    foreign = exchange_account_create(owner=charlie, exchange="binance", label="C", mode="paper")
    page = create(alice_client, foreign)
    assert page.status_code == 200 and not Bot.objects.exists()


def test_rotation_retires_the_old_token(alice_client, alice, client):
    bot, secrets = make_signal_bot(alice)
    page = alice_client.post(reverse("signals:rotate", args=[bot.pk]))
    new_url = re.search(r'<pre id="hook-url">([^<]+)</pre>', page.content.decode()).group(1)
    new_token = new_url.rstrip("/").rsplit("/", 1)[1]
    assert post_alert(client, secrets.token, alert()).status_code == 404
    assert post_alert(client, new_token, alert()).status_code == 200
    assert AuditEvent.objects.filter(event_type="signals.secrets.rotated").count() == 1


def test_history_is_paginated(alice_client, alice, client):
    bot, secrets = make_signal_bot(alice)
    for n in range(30):
        post_alert(client, secrets.token, alert(id=str(n)))
    first = alice_client.get(reverse("signals:detail", args=[bot.pk]))
    assert first.content.count(b'<tr id="event-') == 25 and b"page 1 of 2" in first.content
    partial = alice_client.get(
        reverse("signals:detail", args=[bot.pk]) + "?page=2", HTTP_HX_REQUEST="true"
    )
    assert partial.content.count(b'<tr id="event-') == 5 and b"<html" not in partial.content


def test_a_stranger_gets_404(charlie_client, alice):
    bot, _secrets = make_signal_bot(alice)
    assert charlie_client.get(reverse("signals:detail", args=[bot.pk])).status_code == 404
    assert charlie_client.post(reverse("signals:rotate", args=[bot.pk])).status_code == 404
    assert charlie_client.get(reverse("api-signal-events", args=[bot.pk])).status_code == 404


def test_api_create_list_rotate_and_events(alice_client, paper, client):
    created = alice_client.post(
        reverse("api-signal-bot-list"),
        {"name": "API bot", "account": paper.pk, "symbols": ["BTC/USDT"], "size_value": "20"},
        content_type="application/json",
    )
    assert created.status_code == 201
    body = created.json()
    assert body["webhook_url"].startswith("http") and len(body["passphrase"]) >= 12
    bot_id = body["bot"]["id"]
    listed = alice_client.get(reverse("api-signal-bot-list")).json()
    assert [b["id"] for b in listed["results"]] == [bot_id]
    token = body["webhook_url"].rstrip("/").rsplit("/", 1)[1]
    assert token not in str(listed) and body["passphrase"] not in str(listed)
    post_alert(client, token, alert(passphrase=body["passphrase"]))
    events = alice_client.get(reverse("api-signal-events", args=[bot_id])).json()
    assert [e["status"] for e in events["results"]] == ["accepted"]

    rotated = alice_client.post(reverse("api-signal-bot-rotate", args=[bot_id])).json()
    assert rotated["webhook_url"] != body["webhook_url"] and rotated["passphrase"] == ""


def test_api_bad_input_names_the_field(alice_client, paper):
    response = alice_client.post(
        reverse("api-signal-bot-list"),
        {
            "name": "x",
            "account": paper.pk,
            "symbols": ["BTC/USDT"],
            "risk_overrides": {"position_pct": "0.9"},
        },
        content_type="application/json",
    )
    assert response.status_code == 400 and "risk_overrides.position_pct" in response.json()


def test_the_api_is_rate_limited_per_token(alice_client, monkeypatch):
    from apps.signals.api.views import SignalsTokenThrottle

    monkeypatch.setattr(SignalsTokenThrottle, "rate", "2/min")
    codes = [alice_client.get(reverse("api-signal-bot-list")).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def _callbacks(resolver, prefix=""):
    from django.urls import URLResolver

    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _callbacks(entry, prefix + str(entry.pattern))
        else:
            yield prefix + str(entry.pattern), entry.callback


def test_the_hook_is_the_only_csrf_exempt_page_view():
    from django.urls import get_resolver

    # DRF views are exempt from Django's check and enforce CSRF for sessions themselves.
    exempt = {
        path
        for path, callback in _callbacks(get_resolver())
        if getattr(callback, "csrf_exempt", False) and not path.startswith(("api/", "admin/"))
    }
    assert exempt == {"hooks/tv/<str:hook_token>/"}


def test_size_defaults_are_validated(alice, paper):
    from apps.common.errors import InputInvalid
    from apps.signals.services import SignalBotInput, signal_bot_create

    with pytest.raises(InputInvalid) as error:
        signal_bot_create(
            owner=alice,
            data=SignalBotInput(
                name="x",
                account_id=paper.pk,
                symbols=["BTC/USDT"],
                size_mode="equity_pct",
                size_value=Decimal(150),
            ),
        )
    assert error.value.field == "size_value"


def test_the_api_answers_429_at_the_bot_ceiling_and_writes_nothing(alice, alice_client, paper):
    alice.max_bots = 1
    alice.save(update_fields=["max_bots"])
    make_signal_bot(alice, account=paper)
    response = alice_client.post(
        reverse("api-signal-bot-list"),
        {"name": "One too many", "account": paper.pk, "symbols": ["BTC/USDT"]},
        content_type="application/json",
    )
    assert response.status_code == 429 and "limit of 1 bots" in response.json()["detail"]
    assert Bot.objects.filter(owner=alice).count() == 1
    page = create(alice_client, paper, name="From the page")
    assert page.status_code == 200 and b"limit of 1 bots" in page.content
    assert Bot.objects.filter(owner=alice).count() == 1


def test_no_signal_bot_starts_while_the_kill_switch_is_engaged(alice, alice_client, paper):
    from apps.bots.services.lifecycle import user_panic

    user_panic(user=alice, acting_user=alice, reason="test")
    page = create(alice_client, paper)
    assert page.status_code == 200 and b"kill switch is engaged" in page.content
    assert not Bot.objects.exists() and not BotRun.objects.exists()


def test_symbols_in_two_quotes_are_refused_with_the_other_problems(alice_client, paper):
    page = create(alice_client, paper, symbols="BTC/USDT, ETH/BTC", size_value="")
    assert page.status_code == 200 and not Bot.objects.exists()
    assert b'id="error-symbols"' in page.content and b'id="error-size_value"' in page.content
    assert b"one quote currency" in page.content


def test_a_created_signal_bot_runs_with_its_resolved_limits(alice_client, paper):
    assert create(alice_client, paper).status_code == 201
    run = BotRun.objects.get(bot__kind="signal")
    assert run.limits["whitelist"] == ["BTC/USDT", "ETH/USDT"]
    assert run.equity_start is not None and run.next_due_at is None
    events = AuditEvent.objects.filter(target_id=str(run.bot_id)).values_list("event_type")
    assert {"bot.created", "signals.bot.created"} <= {event for (event,) in events}
