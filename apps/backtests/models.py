"""Backtest tasks: one task holds N pairs, each with its own strategy version and settings.

Storage of results, sized for the common case of 10 pairs x 1 year of hourly candles
(8,760 bars per pair) and still reasonable for 100k-bar pairs:

* Curves (`BacktestResult.times/equity/drawdown`, `BacktestTask.equity_*`) are packed numpy
  arrays in `bytea` columns: int64 epoch seconds and float32 values. One hourly year is
  8,760 x (8 + 4 + 4) = 140 KB per pair, written and read in one column each, with no
  per-point rows. float32 keeps 7 significant digits, far finer than a chart pixel; the exact
  final equity and every ratio live in `metrics` (float64 JSON), never recomputed from the
  packed curve.
* Trades are rows (`BacktestTrade`): a year of hourly trading is a few hundred round trips
  per pair, the pages sort and paginate them in SQL, the CSV export streams them, and the
  admin can show them. They are written with one `bulk_create` per pair.
* Simulated prices, sizes and P&L are float64 (FloatField), not Decimal: they are outputs
  of the vectorised float64 engine (DESIGN.md §5 allows floats there), so storing them as
  doubles keeps them bit-identical to `run_backtest` and to the CLI. Inputs the user typed
  (capital, fees, stops) are Decimal.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.common.models import BaseModel
from apps.common.money import AMOUNT_DECIMAL_PLACES, AMOUNT_MAX_DIGITS

FRACTION = {"max_digits": 12, "decimal_places": 8}
FRACTION_RANGE = [MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(1))]


class BelowValidator(MaxValueValidator):
    """A strict upper bound: the engine refuses the limit itself (limit_offset < 0.5)."""

    message = "Ensure this value is less than %(limit_value)s."

    def compare(self, a: Any, b: Any) -> bool:
        return bool(a >= b)


class Side(models.TextChoices):
    LONG = "long", "Long"
    SHORT = "short", "Short"


def pack_times(values: np.ndarray) -> bytes:
    """datetime64 values as little-endian int64 epoch seconds."""
    return values.astype("datetime64[s]").astype("<i8").tobytes()


def pack_values(values: np.ndarray) -> bytes:
    return np.asarray(values, dtype="<f4").tobytes()


def unpack_times(data: bytes | memoryview | None) -> np.ndarray:
    return np.frombuffer(bytes(data or b""), dtype="<i8")


def unpack_values(data: bytes | memoryview | None) -> np.ndarray:
    return np.frombuffer(bytes(data or b""), dtype="<f4")


class BacktestTask(BaseModel):
    class MarketType(models.TextChoices):
        SPOT = "spot", "Spot"
        FUTURES = "futures", "Futures"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="backtest_tasks"
    )
    name = models.CharField(max_length=120)
    exchange = models.CharField(max_length=32, help_text="ccxt exchange id of the candles")
    market_type = models.CharField(
        max_length=10, choices=MarketType.choices, default=MarketType.SPOT
    )
    # Candles with start <= open time < end are simulated, for every pair.
    start = models.DateTimeField()
    end = models.DateTimeField()
    # queued -> running -> done | failed | cancelled; only services and the worker change it,
    # always by conditional UPDATE so two writers cannot both win.
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    progress = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(100)], help_text="percent, 0..100"
    )
    error = models.TextField(blank=True, help_text="why the run failed, shown to the owner")
    celery_task_id = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Aggregate over all pairs: metrics of the combined equity (the sum of the pairs' equity
    # curves on the union of their bar times, each carried forward between its own bars).
    metrics = models.JSONField(null=True, blank=True)
    equity_times = models.BinaryField(null=True, blank=True, editable=False)
    equity_values = models.BinaryField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.CheckConstraint(condition=models.Q(end__gt=models.F("start")), name="bt_range"),
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="bt_progress"),
        ]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class BacktestPair(models.Model):
    class OrderType(models.TextChoices):
        MARKET = "market", "Market"
        LIMIT = "limit", "Limit"

    class Sizing(models.TextChoices):
        ALL_IN = "all_in", "All in"
        PERCENT = "percent", "% of equity"
        FIXED = "fixed", "Fixed amount"
        RISK = "risk", "Risk % at the stop"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"

    task = models.ForeignKey(BacktestTask, on_delete=models.CASCADE, related_name="pairs")
    position = models.PositiveSmallIntegerField(help_text="order of the pair within its task")
    symbol = models.CharField(max_length=64, help_text="ccxt unified symbol, e.g. BTC/USDT")
    timeframe = models.CharField(max_length=8)
    initial_capital = models.DecimalField(
        max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES
    )
    # PROTECT: a version that produced results can never disappear from under them.
    strategy_version = models.ForeignKey(
        "strategies.StrategyVersion", on_delete=models.PROTECT, related_name="backtest_pairs"
    )
    order_type = models.CharField(
        max_length=10, choices=OrderType.choices, default=OrderType.MARKET
    )
    # Fees and other rates are fractions (0.001 = 0.1 %). The simulator has one fee per
    # fill: market orders pay the taker fee; the maker fee is kept for limit orders.
    maker_fee = models.DecimalField(**FRACTION, default=Decimal("0.001"))
    taker_fee = models.DecimalField(**FRACTION, default=Decimal("0.001"))
    slippage = models.DecimalField(**FRACTION, default=Decimal(0))
    stop_loss = models.DecimalField(**FRACTION, null=True, blank=True)
    take_profit = models.DecimalField(**FRACTION, null=True, blank=True)
    trailing_stop = models.DecimalField(**FRACTION, null=True, blank=True)
    sizing = models.CharField(max_length=10, choices=Sizing.choices, default=Sizing.ALL_IN)
    # percent/risk: a fraction of equity; fixed: a quote amount per trade; all_in: unused.
    size_value = models.DecimalField(
        max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES, default=Decimal(1)
    )
    max_trades_per_day = models.PositiveIntegerField(null=True, blank=True)
    max_drawdown_stop = models.DecimalField(**FRACTION, null=True, blank=True)
    # Limit orders only: the entry buy rests at the signal bar's close x (1 - offset), the
    # exit sell at close x (1 + offset), each for one bar.
    limit_offset = models.DecimalField(
        **FRACTION,
        default=Decimal(0),
        validators=[MinValueValidator(Decimal(0)), BelowValidator(Decimal("0.5"))],
        help_text="limit orders: fraction below (buy) or above (sell) the signal close",
    )
    # Futures only (the task's market type); spot pairs keep the defaults, which the
    # service enforces for leverage and direction.
    leverage = models.DecimalField(
        max_digits=6,
        decimal_places=2,
        default=Decimal(1),
        validators=[MinValueValidator(Decimal(1)), MaxValueValidator(Decimal(125))],
        help_text="futures: notional = margin x leverage, 1..125",
    )
    direction = models.CharField(
        max_length=5,
        choices=Side.choices,
        default=Side.LONG,
        help_text="futures: a short pair sells on the entry signal and buys back on the exit",
    )
    funding_rate = models.DecimalField(
        **FRACTION,
        default=Decimal("0.0001"),
        validators=[MinValueValidator(Decimal("-0.01")), MaxValueValidator(Decimal("0.01"))],
        help_text="futures: per 8 hours on the notional, paid by longs when positive",
    )
    maintenance_margin = models.DecimalField(
        **FRACTION,
        default=Decimal("0.005"),
        validators=[MinValueValidator(Decimal(0)), BelowValidator(Decimal("0.5"))],
        help_text="futures: liquidated when margin falls to this fraction of the notional",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)

    class Meta:
        ordering = ("task", "position")
        constraints = [
            models.UniqueConstraint(fields=("task", "position"), name="bt_pair_position")
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.timeframe}"

    @property
    def label(self) -> str:
        return f"{self.symbol} {self.timeframe}"


class BacktestResult(models.Model):
    pair = models.OneToOneField(BacktestPair, on_delete=models.CASCADE, related_name="result")
    # Metrics.as_dict() of apps/engine/metrics.py, float64.
    metrics = models.JSONField()
    candle_count = models.PositiveIntegerField()
    times = models.BinaryField(editable=False)  # int64 epoch seconds per bar
    equity = models.BinaryField(editable=False)  # float32 per bar, quote currency
    drawdown = models.BinaryField(editable=False)  # float32 per bar, fraction below peak
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"result of {self.pair}"


class BacktestTrade(models.Model):
    pair = models.ForeignKey(BacktestPair, on_delete=models.CASCADE, related_name="trades")
    number = models.PositiveIntegerField(help_text="1-based, in entry order")
    entry_time = models.DateTimeField()
    exit_time = models.DateTimeField(null=True, blank=True, help_text="empty: still open")
    entry_price = models.FloatField()
    exit_price = models.FloatField(null=True, blank=True)
    size = models.FloatField(help_text="base units")
    fee = models.FloatField(help_text="both sides, quote currency")
    pnl = models.FloatField(help_text="quote currency, after fees (and funding on futures)")
    exit_reason = models.CharField(max_length=16)
    # Futures shorts sell to enter and buy back to exit; spot trades are always long.
    side = models.CharField(max_length=5, choices=Side.choices, default=Side.LONG)

    class Meta:
        ordering = ("pair", "number")
        constraints = [models.UniqueConstraint(fields=("pair", "number"), name="bt_trade_number")]

    def __str__(self) -> str:
        return f"trade {self.number} of {self.pair}"

    @property
    def return_pct(self) -> float | None:
        cost = self.size * self.entry_price
        return self.pnl / cost * 100 if cost else None
