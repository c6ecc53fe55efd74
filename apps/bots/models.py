"""Bots: a strategy version (or a webhook signal source) trading one exchange account.

The loop is DESIGN.md §4. A `Bot` holds what the user configured; each start makes a
`BotRun`, the unit of the state machine (NEW → RUNNING → STOPPING → STOPPED, plus DONE,
FAILED and CANCELLED). Everything a run does is a row here: one `Tick` per closed candle
(unique, which makes a tick idempotent), the `BotOrder`s it issued (unique client order
id, written PENDING_SUBMIT before the broker is called), their `BotFill`s (unique per
account by the exchange's trade id), `EquitySnapshot`s for the equity curve and `BotLog`
lines (engine messages, risk rejections, a script's `print`).

Paper accounts keep the simulated exchange in one `PaperBook` row per account (the engine
`PaperBroker.to_dict()`), so positions are shared by every bot on that account, as on a
real exchange. `AccountRisk` holds the account-wide risk stage; `KillSwitch` rows are the
user's panic switch and the operators' global one.

Money and quantities are Decimal (38/18); candle times are the candle's open time, UTC.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

from apps.common.models import BaseModel
from apps.common.money import AMOUNT_DECIMAL_PLACES, AMOUNT_MAX_DIGITS, ASSET_MAX_LENGTH

AMOUNT = {"max_digits": AMOUNT_MAX_DIGITS, "decimal_places": AMOUNT_DECIMAL_PLACES}
SYMBOL_MAX_LENGTH = 32
FRACTION = {"max_digits": 12, "decimal_places": 8}


class RiskProfileName(models.TextChoices):
    CONSERVATIVE = "conservative", "Conservative"
    BALANCED = "balanced", "Balanced"
    AGGRESSIVE = "aggressive", "Aggressive"


class Bot(BaseModel):
    class Kind(models.TextChoices):
        STRATEGY = "strategy", "Strategy"
        SIGNAL = "signal", "Webhook signals"

    class Feed(models.TextChoices):
        LIVE = "live", "Live market data"
        REPLAY = "replay", "Replay stored candles"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="bots"
    )
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.STRATEGY)
    # Signal bots act on alerts, not on a strategy.
    strategy_version = models.ForeignKey(
        "strategies.StrategyVersion",
        on_delete=models.PROTECT,
        related_name="bots",
        null=True,
        blank=True,
    )
    account = models.ForeignKey(
        "exchanges.ExchangeAccount", on_delete=models.PROTECT, related_name="bots"
    )
    symbols = models.JSONField(default=list, help_text="ccxt symbols, e.g. BTC/USDT")
    timeframe = models.CharField(max_length=8, default="1h")
    params = models.JSONField(default=dict, blank=True, help_text="strategy parameter overrides")
    risk_profile = models.CharField(
        max_length=16, choices=RiskProfileName.choices, default=RiskProfileName.CONSERVATIVE
    )
    # Overrides of the profile's values, each within the profile's cap (engine risk_profile).
    risk_overrides = models.JSONField(default=dict, blank=True)
    # Launch settings.
    capital_limit = models.DecimalField(
        **AMOUNT, null=True, blank=True, validators=[MinValueValidator(Decimal(0))]
    )
    leverage = models.DecimalField(max_digits=6, decimal_places=2, default=Decimal(1))
    max_trades_per_day = models.PositiveIntegerField(null=True, blank=True)
    assume_position = models.BooleanField(
        default=False, help_text="treat a holding already on the account as this bot's position"
    )
    close_on_stop = models.BooleanField(default=True)
    cooldown_after_losses = models.PositiveIntegerField(null=True, blank=True)
    cooldown_bars = models.PositiveIntegerField(default=0)
    # Market data: live polling, or a replay of stored candles (tests, demo).
    feed = models.CharField(max_length=8, choices=Feed.choices, default=Feed.LIVE)
    market_exchange = models.CharField(
        max_length=50, blank=True, help_text="candle source for a replay feed (market app)"
    )
    replay_start = models.DateTimeField(null=True, blank=True)
    replay_seconds_per_candle = models.DecimalField(
        max_digits=8, decimal_places=3, default=Decimal(2)
    )
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(fields=("owner", "name"), name="bot_name_unique_per_owner"),
            models.CheckConstraint(
                condition=models.Q(kind="signal") | models.Q(strategy_version__isnull=False),
                name="bot_strategy_needs_version",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class BotRun(BaseModel):
    class Status(models.TextChoices):
        NEW = "NEW", "New"
        RUNNING = "RUNNING", "Running"
        STOPPING = "STOPPING", "Stopping"
        STOPPED = "STOPPED", "Stopped"
        DONE = "DONE", "Done"
        FAILED = "FAILED", "Failed"
        CANCELLED = "CANCELLED", "Cancelled"

    ACTIVE = (Status.NEW, Status.RUNNING, Status.STOPPING)

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    paused_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    close_positions = models.BooleanField(default=True, help_text="chosen when stopping")
    # The open time of the last candle ticked, and of the next one due.
    last_candle_at = models.DateTimeField(null=True, blank=True)
    next_due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_tick_at = models.DateTimeField(null=True, blank=True)
    ticks_done = models.PositiveIntegerField(default=0)
    ticks_dropped = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # A replay feed's wall-clock anchor: candle k of the replay closes at
    # replay_anchor + k x replay_seconds_per_candle.
    replay_anchor = models.DateTimeField(null=True, blank=True)
    memory = models.JSONField(default=dict, blank=True, help_text="strategy memory, sdk.state")
    risk_state = models.JSONField(default=dict, blank=True)
    limits = models.JSONField(default=dict, blank=True, help_text="resolved risk limits")
    equity_start = models.DecimalField(**AMOUNT, null=True, blank=True)
    equity_last = models.DecimalField(**AMOUNT, null=True, blank=True)
    realized_pnl = models.DecimalField(**AMOUNT, default=Decimal(0))
    consecutive_losses = models.PositiveIntegerField(default=0)
    cooldown_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=("bot",),
                condition=models.Q(status__in=("NEW", "RUNNING", "STOPPING")),
                name="bot_run_one_active_per_bot",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    status__in=(
                        "NEW",
                        "RUNNING",
                        "STOPPING",
                        "STOPPED",
                        "DONE",
                        "FAILED",
                        "CANCELLED",
                    )
                ),
                name="bot_run_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.bot.name} run {self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class Tick(models.Model):
    """One closed candle handled (or dropped) by a run; unique, so a tick runs once."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        DROPPED = "dropped", "Dropped"
        FAILED = "failed", "Failed"

    run = models.ForeignKey(BotRun, on_delete=models.CASCADE, related_name="ticks")
    candle_time = models.DateTimeField(help_text="open time of the closed candle")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    # From the candle's close (as the feed saw it) to the tick's commit.
    delay_ms = models.PositiveIntegerField(null=True, blank=True)
    orders = models.PositiveIntegerField(default=0)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ("-candle_time",)
        constraints = [
            models.UniqueConstraint(fields=("run", "candle_time"), name="tick_unique_per_candle")
        ]

    def __str__(self) -> str:
        return f"tick {self.candle_time:%Y-%m-%d %H:%M} ({self.status})"


class BotOrder(BaseModel):
    class Status(models.TextChoices):
        PENDING_SUBMIT = "PENDING_SUBMIT", "Pending submit"
        OPEN = "OPEN", "Open"
        PARTIALLY_FILLED = "PARTIALLY_FILLED", "Partially filled"
        FILLED = "FILLED", "Filled"
        CANCELLED = "CANCELLED", "Cancelled"
        REJECTED = "REJECTED", "Rejected"
        EXPIRED = "EXPIRED", "Expired"
        UNKNOWN = "UNKNOWN", "Unknown"

    OPEN_STATUSES = (Status.PENDING_SUBMIT, Status.OPEN, Status.PARTIALLY_FILLED, Status.UNKNOWN)

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="orders")
    run = models.ForeignKey(BotRun, on_delete=models.CASCADE, related_name="orders", null=True)
    account = models.ForeignKey(
        "exchanges.ExchangeAccount", on_delete=models.CASCADE, related_name="bot_orders"
    )
    client_order_id = models.CharField(max_length=36, unique=True)
    exchange_order_id = models.CharField(max_length=64, blank=True)
    symbol = models.CharField(max_length=SYMBOL_MAX_LENGTH)
    side = models.CharField(max_length=4)
    type = models.CharField(max_length=12)
    qty = models.DecimalField(**AMOUNT, null=True, blank=True)
    quote_qty = models.DecimalField(**AMOUNT, null=True, blank=True)
    limit_price = models.DecimalField(**AMOUNT, null=True, blank=True)
    stop_price = models.DecimalField(**AMOUNT, null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING_SUBMIT, db_index=True
    )
    filled_qty = models.DecimalField(**AMOUNT, default=Decimal(0))
    average_price = models.DecimalField(**AMOUNT, null=True, blank=True)
    reason = models.CharField(max_length=16, default="signal")
    tag = models.CharField(max_length=64, blank=True)
    message = models.TextField(blank=True)
    # The candle whose close issued it (None for manual, stop and kill-switch orders).
    candle_time = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")


class BotFill(models.Model):
    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="fills")
    order = models.ForeignKey(BotOrder, on_delete=models.CASCADE, related_name="fills")
    account = models.ForeignKey(
        "exchanges.ExchangeAccount", on_delete=models.CASCADE, related_name="bot_fills"
    )
    fill_id = models.CharField(max_length=64)
    symbol = models.CharField(max_length=SYMBOL_MAX_LENGTH)
    side = models.CharField(max_length=4)
    qty = models.DecimalField(**AMOUNT)
    price = models.DecimalField(**AMOUNT)
    fee = models.DecimalField(**AMOUNT, default=Decimal(0))
    fee_asset = models.CharField(max_length=ASSET_MAX_LENGTH)
    liquidity = models.CharField(max_length=5, default="taker")
    executed_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("executed_at", "id")
        constraints = [
            models.UniqueConstraint(
                fields=("account", "fill_id"), name="bot_fill_unique_per_account"
            )
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.qty} {self.symbol} @ {self.price}"


class EquitySnapshot(models.Model):
    run = models.ForeignKey(BotRun, on_delete=models.CASCADE, related_name="snapshots")
    time = models.DateTimeField(help_text="candle close the equity is marked at")
    equity = models.DecimalField(**AMOUNT)
    cash = models.DecimalField(**AMOUNT)
    position_value = models.DecimalField(**AMOUNT)
    realized_pnl = models.DecimalField(**AMOUNT)
    unrealized_pnl = models.DecimalField(**AMOUNT)

    class Meta:
        ordering = ("time",)
        constraints = [
            models.UniqueConstraint(fields=("run", "time"), name="equity_snapshot_unique_time")
        ]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M} {self.equity}"


class BotLog(models.Model):
    class Level(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        ERROR = "error", "Error"

    class Source(models.TextChoices):
        SYSTEM = "system", "System"
        STRATEGY = "strategy", "Strategy"
        SCRIPT = "script", "Script print"
        RISK = "risk", "Risk"
        BROKER = "broker", "Broker"
        USER = "user", "User action"

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="logs")
    run = models.ForeignKey(BotRun, on_delete=models.CASCADE, related_name="logs", null=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    candle_time = models.DateTimeField(null=True, blank=True)
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.INFO)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.SYSTEM)
    message = models.TextField()

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"[{self.level}] {self.message[:60]}"


class PaperBook(BaseModel):
    """A paper account's simulated exchange: the engine PaperBroker's state as JSON.

    Read and written under `select_for_update`, so ticks of bots sharing the account
    take turns."""

    account = models.OneToOneField(
        "exchanges.ExchangeAccount", on_delete=models.CASCADE, related_name="paper_book"
    )
    quote = models.CharField(max_length=ASSET_MAX_LENGTH)
    state = models.JSONField()
    # The simulated venue's costs; Binance spot's base rate by default.
    maker_fee = models.DecimalField(**FRACTION, default=Decimal("0.001"))
    taker_fee = models.DecimalField(**FRACTION, default=Decimal("0.001"))
    slippage = models.DecimalField(**FRACTION, default=Decimal(0))

    def __str__(self) -> str:
        return f"paper book of account {self.account_id} ({self.quote})"


class AccountRisk(BaseModel):
    """The account-wide risk stage (engine RiskState), shared by its bots."""

    account = models.OneToOneField(
        "exchanges.ExchangeAccount", on_delete=models.CASCADE, related_name="risk"
    )
    state = models.JSONField(default=dict, blank=True)


class KillSwitch(BaseModel):
    """A user's panic switch (user set) or the operators' global one (user NULL)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="kill_switch",
    )
    engaged = models.BooleanField(default=False)
    engaged_at = models.DateTimeField(null=True, blank=True)
    engaged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            # NULLS NOT DISTINCT: at most one global row (user NULL).
            models.UniqueConstraint(
                fields=("user",), nulls_distinct=False, name="kill_switch_one_per_scope"
            )
        ]
