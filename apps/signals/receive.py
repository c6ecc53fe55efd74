"""Receiving one webhook delivery (reliability.md §6.2): authenticate, validate, store once,
queue the execution. No exchange call happens here, so the answer comes well within
TradingView's 3 s.

Order of checks: rate limit (per token, before any database work), token (404), source
address (403), body (413/400), passphrase (401), replay window (400 on `time`), the bot's
whitelist and state (400/409). Every outcome but the rate limit is a `WebhookEvent` (the
accepted ones) or an audited rejection; a duplicate of an accepted alert answers 200
{"duplicate": true} and does nothing else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.audit.services import audit_record
from apps.bots.models import Bot, BotRun
from apps.signals import secrets
from apps.signals.models import SignalSource, WebhookEvent
from apps.signals.parsing import Alert, PayloadInvalid, parse_alert
from apps.signals.ratelimit import over_limit

ACTOR_LABEL = "webhook"


@dataclass(frozen=True)
class Delivery:
    token: str
    body: bytes
    content_type: str
    source_ip: str | None
    received_at: datetime


@dataclass(frozen=True)
class Reply:
    status: int
    data: dict[str, Any] = field(default_factory=dict)


class _Refused(Exception):
    def __init__(self, status: int, reason: str, field: str = "") -> None:
        super().__init__(reason)
        # Both may quote the sender's keys, and PostgreSQL text refuses NUL characters.
        self.status = status
        self.reason, self.field = reason.replace("\x00", "\\0"), field.replace("\x00", "\\0")


def webhook_receive(*, delivery: Delivery) -> Reply:
    """Handle one delivery and say what to answer; never raises for bad input."""
    token_hash = secrets.token_hash(delivery.token)
    if over_limit("hook", token_hash[:32]):
        return Reply(429, {"error": "too many requests for this webhook", "field": "token"})
    source = (
        SignalSource.objects.select_related("bot", "bot__owner")
        .filter(token_hash=token_hash)
        .first()
    )
    alert: Alert | None = None
    try:
        if source is None or not secrets.same_secret(token_hash, source.token_hash):
            raise _Refused(404, "unknown webhook token", "token")
        _check_source_ip(source, delivery.source_ip)
        alert = _parse(delivery.body)
        _check_passphrase(source, alert)
        _check_time(source, alert, delivery.received_at)
        run = _check_bot(source.bot, alert)
    except _Refused as refused:
        bot = None if source is None else source.bot
        return _reject(delivery, bot, alert, refused)
    return _accept(delivery, source, alert, run)


def _check_source_ip(source: SignalSource, source_ip: str | None) -> None:
    if source.ip_allowlist and source_ip not in source.ip_allowlist:
        raise _Refused(403, f"sender address {source_ip} is not on the allowlist", "source_ip")


def _parse(body: bytes) -> Alert:
    try:
        return parse_alert(body)
    except PayloadInvalid as error:
        raise _Refused(400, error.message, error.field) from None


def _check_passphrase(source: SignalSource, alert: Alert) -> None:
    given = secrets.passphrase_hash(alert.passphrase, source.passphrase_salt)
    if not secrets.same_secret(given, source.passphrase_hash):
        raise _Refused(401, "wrong passphrase", "passphrase")


def _check_time(source: SignalSource, alert: Alert, now: datetime) -> None:
    """TV-4: a replayed or delayed alert is refused, and so is one from the future."""
    if alert.time is None:
        if source.require_time:
            raise _Refused(400, "time is missing: add {{timenow}} to the message", "time")
        return
    age = now - alert.time
    if age > timedelta(seconds=source.max_age_seconds):
        raise _Refused(400, f"alert is {int(age.total_seconds())} s old (stale)", "time")
    if -age > timedelta(seconds=source.max_ahead_seconds):
        raise _Refused(400, f"alert time is {int(-age.total_seconds())} s ahead", "time")


def _check_bot(bot: Bot, alert: Alert) -> BotRun:
    if alert.symbol not in bot.symbols:
        raise _Refused(400, f"{alert.symbol} is not on this bot's instrument whitelist", "ticker")
    run = bot.runs.filter(status=BotRun.Status.RUNNING).first()
    if bot.archived_at is not None or run is None:
        raise _Refused(409, "the bot is not running", "bot")
    if run.paused_at is not None:
        raise _Refused(409, "the bot is paused", "bot")
    return run


def _body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _event(delivery: Delivery, bot: Bot | None, alert: Alert | None, **values: Any) -> WebhookEvent:
    event = WebhookEvent(
        bot=bot,
        source_ip=delivery.source_ip,
        body_sha256=_body_sha256(delivery.body),
        content_type=delivery.content_type[:100],
        received_at=delivery.received_at,
        **values,
    )
    if alert is not None:
        event.action, event.ticker, event.symbol = alert.action, alert.ticker[:64], alert.symbol
        event.size_mode, event.size = alert.size_mode, alert.size
        event.price, event.alert_time = alert.price, alert.time
    return event


def _audit(event_type: str, bot: Bot | None, target: WebhookEvent | None, **data: Any) -> None:
    audit_record(
        event_type=f"signals.webhook.{event_type}",
        actor=None,
        actor_label=ACTOR_LABEL,
        owner=None if bot is None else bot.owner,
        target=target,
        data=data,
    )


@transaction.atomic
def _reject(delivery: Delivery, bot: Bot | None, alert: Alert | None, refused: _Refused) -> Reply:
    event = _event(
        delivery,
        bot,
        alert,
        status=WebhookEvent.Status.REJECTED,
        reason=refused.reason[:300],
        field=refused.field[:50],
        http_status=refused.status,
    )
    event.save(force_insert=True)
    _audit(
        "rejected",
        bot,
        event,
        reason=event.reason,
        field=event.field,
        http_status=refused.status,
        source_ip=delivery.source_ip,
        body_sha256=event.body_sha256,
    )
    return Reply(refused.status, {"error": event.reason, "field": event.field})


def _accept(delivery: Delivery, source: SignalSource, alert: Alert, run: BotRun) -> Reply:
    from apps.signals.tasks import signal_execute

    bot = source.bot
    window = int(delivery.received_at.timestamp()) // settings.SIGNALS_DEDUP_WINDOW_SECONDS
    event = _event(
        delivery,
        bot,
        alert,
        key=alert.key(bot.pk, window=window),
        status=WebhookEvent.Status.ACCEPTED,
        execution=WebhookEvent.Execution.PENDING,
        validated_at=timezone.now(),
    )
    _default_size(event, source)
    # A repeat just after a window's end still finds the alert of the window before.
    keys = [event.key, alert.key(bot.pk, window=window - 1)]
    with transaction.atomic():
        earlier = keys[1] != keys[0] and WebhookEvent.objects.filter(key=keys[1]).exists()
        event_id = None if earlier else _insert_once(event)
        if event_id is None:
            original = WebhookEvent.objects.filter(key__in=keys).order_by("pk")
            original_id = original.values_list("pk", flat=True).first()
            WebhookEvent.objects.filter(pk=original_id).update(duplicates=F("duplicates") + 1)
            _audit(
                "duplicate",
                bot,
                None,
                event=original_id,
                source_ip=delivery.source_ip,
                body_sha256=event.body_sha256,
            )
            return Reply(200, {"duplicate": True, "event": original_id})
        event.pk = event_id
        _audit(
            "accepted",
            bot,
            event,
            action=event.action,
            symbol=event.symbol,
            size_mode=event.size_mode,
            size=event.size,
            run=run.pk,
            source_ip=delivery.source_ip,
            body_sha256=event.body_sha256,
        )
        transaction.on_commit(lambda: signal_execute.delay(event_id))
    return Reply(200, {"accepted": True, "event": event_id})


def _default_size(event: WebhookEvent, source: SignalSource) -> None:
    """An alert without a size takes the bot's default rule (a close sells everything)."""
    if event.size_mode or event.action == "close":
        return
    if source.size_mode != "profile" and source.size_value is not None:
        event.size_mode, event.size = source.size_mode, source.size_value


def _insert_once(event: WebhookEvent) -> int | None:
    """INSERT ... ON CONFLICT (key) DO NOTHING: the id, or None when the key exists.

    A concurrent insert of the same key waits for the first transaction and then finds
    the conflict, so exactly one delivery of an alert wins (TV-2)."""
    meta = WebhookEvent._meta
    columns = [f for f in meta.concrete_fields if not f.primary_key]
    values = [f.get_db_prep_save(f.pre_save(event, True), connection) for f in columns]
    names = ", ".join(connection.ops.quote_name(f.column) for f in columns)
    marks = ", ".join(["%s"] * len(columns))
    # Identifiers come from the model's own metadata, values are parameters.
    table = connection.ops.quote_name(meta.db_table)
    sql = (
        f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT (key) DO NOTHING RETURNING id"  # noqa: S608
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    return None if row is None else int(row[0])
