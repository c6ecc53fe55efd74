"""TradingView webhook signals (issue 7, reliability.md §6).

A signal bot is an `apps.bots.models.Bot` with kind="signal"; its `SignalSource` holds the
webhook secrets and the delivery rules. Every delivery becomes a `WebhookEvent` (an
accepted alert, or a rejection with its reason) plus an audit event; a duplicate of an
accepted alert adds no row (TV-2 counts exactly one event per distinct alert), it bumps
the original's `duplicates` and is audited.

Secrets: the URL token is 256 random bits and only its SHA-256 is stored (it is shown once,
at creation or rotation). The passphrase is stored as a salted SHA-256 (a slow password
hash would cost the latency budget, and the passphrase is generated with 128+ bits or
chosen with a minimum length). The raw body is never stored: it carries the passphrase.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models

from apps.bots.models import AMOUNT, SYMBOL_MAX_LENGTH, Bot, BotOrder
from apps.common.models import BaseModel

# TradingView's published webhook senders (support article 43000529348).
TRADINGVIEW_IPS = ("52.89.214.238", "34.212.75.30", "54.218.53.128", "52.32.178.7")


class SizeMode(models.TextChoices):
    CONTRACTS = "contracts", "Contracts (base units)"
    QUOTE = "quote", "Quote amount (e.g. USDT)"
    EQUITY_PCT = "equity_pct", "% of equity"
    PROFILE = "profile", "The risk profile's sizing rule"


class SignalSource(BaseModel):
    bot = models.OneToOneField(Bot, on_delete=models.CASCADE, related_name="signal_source")
    token_hash = models.CharField(max_length=64, unique=True)
    token_rotated_at = models.DateTimeField()
    passphrase_salt = models.CharField(max_length=32)
    passphrase_hash = models.CharField(max_length=64)
    ip_allowlist = models.JSONField(
        default=list, blank=True, help_text="sender addresses accepted; empty accepts any"
    )
    require_time = models.BooleanField(
        default=True, help_text="refuse alerts without a time ({{timenow}})"
    )
    max_age_seconds = models.PositiveIntegerField(default=60)
    max_ahead_seconds = models.PositiveIntegerField(default=30)
    size_mode = models.CharField(max_length=12, choices=SizeMode.choices, default=SizeMode.QUOTE)
    size_value = models.DecimalField(**AMOUNT, null=True, blank=True)

    def __str__(self) -> str:
        return f"signals of {self.bot}"


class WebhookEvent(models.Model):
    class Status(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        DUPLICATE = "duplicate", "Duplicate"  # audit vocabulary; duplicates add no row
        REJECTED = "rejected", "Rejected"

    class Execution(models.TextChoices):
        NONE = "", "Not executed"
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent to the exchange"
        REFUSED = "refused", "Refused by risk"
        FAILED = "failed", "Failed"

    bot = models.ForeignKey(
        Bot, on_delete=models.CASCADE, related_name="webhook_events", null=True, blank=True
    )
    # sha256(bot id || canonical body), or the alert's own id; NULL for rejections.
    key = models.CharField(max_length=200, unique=True, null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices)
    reason = models.CharField(max_length=300, blank=True)
    field = models.CharField(max_length=50, blank=True)
    http_status = models.PositiveSmallIntegerField(default=200)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    body_sha256 = models.CharField(max_length=64, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    action = models.CharField(max_length=8, blank=True)
    ticker = models.CharField(max_length=64, blank=True)
    symbol = models.CharField(max_length=SYMBOL_MAX_LENGTH, blank=True)
    size_mode = models.CharField(max_length=12, blank=True)
    size = models.DecimalField(**AMOUNT, null=True, blank=True)
    price = models.DecimalField(**AMOUNT, null=True, blank=True)
    alert_time = models.DateTimeField(null=True, blank=True)
    duplicates = models.PositiveIntegerField(default=0)
    # Stages: received -> validated (stored) -> risk checked -> sent to the exchange.
    received_at = models.DateTimeField(db_index=True)
    validated_at = models.DateTimeField(null=True, blank=True)
    risk_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    latency_ms = models.DecimalField(
        max_digits=12, decimal_places=3, null=True, blank=True, help_text="received -> sent"
    )
    execution = models.CharField(
        max_length=8, choices=Execution.choices, default=Execution.NONE, blank=True
    )
    execution_reason = models.CharField(max_length=300, blank=True)
    order = models.ForeignKey(
        BotOrder, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ("-received_at", "-id")
        indexes = [models.Index(fields=("bot", "-received_at"), name="webhook_event_bot_time")]

    def __str__(self) -> str:
        return f"{self.status} {self.action} {self.symbol}".strip()

    @property
    def stage_times(self) -> dict[str, Decimal | None]:
        """Milliseconds spent in each stage, for the history table."""
        return {
            "validated": self.stage_ms("received_at", "validated_at"),
            "risk": self.stage_ms("validated_at", "risk_at"),
            "sent": self.stage_ms("risk_at", "sent_at"),
        }

    def stage_ms(self, start: str, end: str) -> Decimal | None:
        begin, finish = getattr(self, start), getattr(self, end)
        if begin is None or finish is None:
            return None
        return Decimal((finish - begin).total_seconds() * 1000).quantize(Decimal("0.1"))
