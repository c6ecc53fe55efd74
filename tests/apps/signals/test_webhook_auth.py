"""TV-1 (token and passphrase), TV-4 (replay window), the source allowlist, body limits,
duplicates and the per-token rate limit, through the HTTP endpoint a sender uses."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from apps.audit.models import AuditEvent
from apps.bots.models import BotOrder
from apps.signals.models import TRADINGVIEW_IPS, SignalSource, WebhookEvent
from apps.signals.secrets import token_hash
from tests.apps.signals.conftest import alert, make_signal_bot, post_alert

pytestmark = pytest.mark.django_db


def audit_types() -> list[str]:
    return list(AuditEvent.objects.order_by("seq").values_list("event_type", flat=True))


def test_a_good_alert_is_stored_audited_and_queued(
    client, signal_bot, queued, django_capture_on_commit_callbacks
):
    bot, secrets = signal_bot
    with django_capture_on_commit_callbacks(execute=True):
        response = post_alert(client, secrets.token, alert())
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert response.json() == {"accepted": True, "event": event.pk}
    assert (event.bot, event.status, event.symbol, event.action) == (
        bot,
        "accepted",
        "BTC/USDT",
        "buy",
    )
    assert event.execution == "pending" and event.validated_at is not None
    assert queued == [event.pk]
    assert audit_types()[-1] == "signals.webhook.accepted"


def test_a_wrong_token_is_404_audited_and_orders_nothing(client, signal_bot, queued):
    response = post_alert(client, "x" * 43, alert())
    assert response.status_code == 404
    assert response.json()["field"] == "token"
    event = WebhookEvent.objects.get()
    assert event.bot is None and event.status == "rejected" and event.http_status == 404
    assert audit_types()[-1] == "signals.webhook.rejected"
    assert queued == [] and not BotOrder.objects.exists()


def test_a_wrong_passphrase_is_401_audited_without_the_body(client, signal_bot, queued):
    bot, secrets = signal_bot
    response = post_alert(client, secrets.token, alert(passphrase="guessed-passphrase"))
    assert response.status_code == 401
    assert response.json() == {"error": "wrong passphrase", "field": "passphrase"}
    event = WebhookEvent.objects.get()
    assert (event.bot, event.http_status, event.field) == (bot, 401, "passphrase")
    last = AuditEvent.objects.order_by("-seq").first()
    assert last.event_type == "signals.webhook.rejected"
    assert "guessed-passphrase" not in str(last.data) and len(last.data["body_sha256"]) == 64
    assert queued == [] and not BotOrder.objects.exists()


def test_secrets_are_stored_as_hashes_only(signal_bot):
    bot, secrets = signal_bot
    source = bot.signal_source
    assert source.token_hash == token_hash(secrets.token)
    stored = str(list(type(source).objects.filter(pk=source.pk).values()))
    assert secrets.token not in stored and secrets.passphrase not in stored


@pytest.mark.parametrize(
    ("shift", "accepted"),
    [(-59, True), (-61, False), (-3600, False), (29, True), (31, False), (86400, False)],
)
def test_tv4_stale_and_future_alerts_are_rejected_and_audited(
    client, signal_bot, queued, shift, accepted
):
    _bot, secrets = signal_bot
    moment = datetime.now(UTC) + timedelta(seconds=shift)
    response = post_alert(client, secrets.token, alert(time=moment.strftime("%Y-%m-%dT%H:%M:%SZ")))
    event = WebhookEvent.objects.get()
    if accepted:
        assert response.status_code == 200 and event.status == "accepted"
    else:
        assert response.status_code == 400 and response.json()["field"] == "time"
        assert event.status == "rejected" and audit_types()[-1] == "signals.webhook.rejected"


def test_an_alert_without_time_is_refused_by_default(client, signal_bot):
    _bot, secrets = signal_bot
    response = post_alert(client, secrets.token, alert(time=None))
    assert response.status_code == 400 and response.json()["field"] == "time"


def test_a_duplicate_answers_200_and_does_nothing_more(
    client, signal_bot, queued, django_capture_on_commit_callbacks
):
    _bot, secrets = signal_bot
    body = alert()
    with django_capture_on_commit_callbacks(execute=True):
        first = post_alert(client, secrets.token, body)
        second = post_alert(client, secrets.token, body)
    assert first.status_code == second.status_code == 200
    event = WebhookEvent.objects.get()
    assert second.json() == {"duplicate": True, "event": event.pk}
    assert event.duplicates == 1 and queued == [event.pk]
    assert audit_types()[-1] == "signals.webhook.duplicate"


def test_an_alert_without_id_or_time_repeats_only_within_the_dedup_window(
    client, signal_bot, queued, settings
):
    bot, secrets = signal_bot
    SignalSource.objects.filter(bot=bot).update(require_time=False)  # the sender sends none
    body = alert()
    del body["time"]
    assert settings.SIGNALS_DEDUP_WINDOW_SECONDS == 60
    near_a_window_end = datetime(2026, 1, 5, 12, 0, 59, 500_000, tzinfo=UTC)
    with time_machine.travel(near_a_window_end, tick=False):
        first = post_alert(client, secrets.token, body)
    # A retry a second later falls in the next window and is still the same alert.
    with time_machine.travel(near_a_window_end + timedelta(seconds=1), tick=False):
        retry = post_alert(client, secrets.token, body)
    assert retry.json() == {"duplicate": True, "event": first.json()["event"]}
    # The same message minutes later is the strategy signalling again.
    with time_machine.travel(near_a_window_end + timedelta(minutes=5), tick=False):
        later = post_alert(client, secrets.token, body)
    assert later.json()["accepted"] is True
    assert WebhookEvent.objects.filter(status="accepted").count() == 2


def test_the_alert_id_is_the_key_when_given(client, signal_bot, queued):
    _bot, secrets = signal_bot
    post_alert(client, secrets.token, alert(id="order-7", price="1"))
    again = post_alert(client, secrets.token, alert(id="order-7", price="2"))
    assert again.json()["duplicate"] is True
    assert WebhookEvent.objects.count() == 1


def test_the_ip_allowlist_refuses_other_senders(client, alice):
    _bot, secrets = make_signal_bot(alice, ip_allowlist=TRADINGVIEW_IPS)
    refused = post_alert(client, secrets.token, alert(), REMOTE_ADDR="10.1.2.3")
    assert refused.status_code == 403 and refused.json()["field"] == "source_ip"
    allowed = post_alert(client, secrets.token, alert(), REMOTE_ADDR=TRADINGVIEW_IPS[0])
    assert allowed.status_code == 200


def test_forwarded_for_counts_only_behind_a_trusted_proxy(client, alice, settings):
    _bot, secrets = make_signal_bot(alice, ip_allowlist=TRADINGVIEW_IPS)
    spoofed = {"REMOTE_ADDR": "10.1.2.3", "HTTP_X_FORWARDED_FOR": TRADINGVIEW_IPS[1]}
    assert post_alert(client, secrets.token, alert(), **spoofed).status_code == 403
    settings.AXES_IPWARE_PROXY_COUNT = 1
    assert post_alert(client, secrets.token, alert(), **spoofed).status_code == 200


def test_a_body_over_1_mb_is_413(client, signal_bot):
    _bot, secrets = signal_bot
    body = '{"passphrase": "' + "x" * (1024 * 1024) + '"}'
    assert post_alert(client, secrets.token, body).status_code == 413
    assert not WebhookEvent.objects.exists()


def test_plain_text_bodies_are_read_as_json_or_key_value_lines(client, signal_bot):
    _bot, secrets = signal_bot
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    import json

    as_text = post_alert(client, secrets.token, json.dumps(alert(id="a")), "text/plain")
    lines = (
        f"passphrase=correct-passphrase-123\nticker=BINANCE:BTCUSDT\naction=sell\n"
        f"contracts=0.5\ntime={now}\nid=b"
    )
    as_lines = post_alert(client, secrets.token, lines, "text/plain; charset=utf-8")
    assert (as_text.status_code, as_lines.status_code) == (200, 200)
    sell = WebhookEvent.objects.get(action="sell")
    assert (sell.size_mode, str(sell.size)) == ("contracts", "0.500000000000000000")


def test_get_is_not_allowed(client, signal_bot):
    _bot, secrets = signal_bot
    from tests.apps.signals.conftest import hook_path

    assert client.get(hook_path(secrets.token)).status_code == 405


def test_the_per_token_rate_limit_answers_429(client, signal_bot, settings):
    settings.SIGNALS_RATE_LIMIT_PER_MINUTE = 3
    _bot, secrets = signal_bot
    codes = [post_alert(client, secrets.token, alert(id=str(n))).status_code for n in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    other_bot_token = make_signal_bot(signal_bot[0].owner, name="Other")[1].token
    assert post_alert(client, other_bot_token, alert()).status_code == 200


def test_a_stopped_bot_refuses_alerts(client, signal_bot):
    bot, secrets = signal_bot
    bot.runs.update(status="STOPPED")
    response = post_alert(client, secrets.token, alert())
    assert response.status_code == 409 and response.json()["field"] == "bot"
