"""Parameter optimisations of one template strategy version on one stored candle series.

A task is planned when it is created (the combinations to try, checked against the
template, and how many chunks they make), then runs as chunks: one Celery task per chunk on
the `backtests` queue, so every worker process takes a share. Each chunk writes its rows
(one per backtest) and marks itself done in one transaction; the chunk that completes the
last one ranks the rows and, for walk-forward, runs each window's winner out of sample.

Scores and metrics are float64 outputs of the vectorised engine (DESIGN.md §5 allows
floats there); the settings a person typed (capital, fees, stops) are Decimal, with the
same columns and defaults as a backtest pair.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models

from apps.backtests.models import FRACTION, BacktestPair
from apps.common.models import BaseModel
from apps.common.money import AMOUNT_DECIMAL_PLACES, AMOUNT_MAX_DIGITS

# The metrics a search ranks by (apps.engine.optimize.SCORE_METRICS), as people say them.
METRIC_LABELS = {
    "sharpe": "Sharpe ratio",
    "sortino": "Sortino ratio",
    "calmar": "Calmar ratio",
    "total_return": "Total return",
    "annualized_return": "Annualised return",
    "profit_factor": "Profit factor",
    "win_rate": "Win rate",
    "final_equity": "Final equity",
    "average_trade": "Average trade P&L",
    "average_trade_return": "Average trade return",
}


class OptimizationTask(BaseModel):
    class Method(models.TextChoices):
        GRID = "grid", "Grid search"
        RANDOM = "random", "Random search"
        WALK_FORWARD = "walk_forward", "Walk-forward"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="optimization_tasks"
    )
    # PROTECT: a version whose optimisation has results can never disappear from under them.
    strategy_version = models.ForeignKey(
        "strategies.StrategyVersion", on_delete=models.PROTECT, related_name="optimizations"
    )
    exchange = models.CharField(max_length=32, help_text="ccxt exchange id of the candles")
    symbol = models.CharField(max_length=64, help_text="ccxt unified symbol, e.g. BTC/USDT")
    timeframe = models.CharField(max_length=8)
    # Candles with start <= open time < end are searched.
    start = models.DateTimeField()
    end = models.DateTimeField()

    # Execution settings: BacktestPair's columns and defaults, market orders on spot.
    initial_capital = models.DecimalField(
        max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES, default=Decimal(10_000)
    )
    taker_fee = models.DecimalField(**FRACTION, default=Decimal("0.001"))
    slippage = models.DecimalField(**FRACTION, default=Decimal(0))
    stop_loss = models.DecimalField(**FRACTION, null=True, blank=True)
    take_profit = models.DecimalField(**FRACTION, null=True, blank=True)
    trailing_stop = models.DecimalField(**FRACTION, null=True, blank=True)
    sizing = models.CharField(
        max_length=10, choices=BacktestPair.Sizing.choices, default=BacktestPair.Sizing.ALL_IN
    )
    size_value = models.DecimalField(
        max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES, default=Decimal(1)
    )
    max_trades_per_day = models.PositiveIntegerField(null=True, blank=True)
    max_drawdown_stop = models.DecimalField(**FRACTION, null=True, blank=True)

    # The search. `space` holds only the parameters that vary, in the engine's format
    # (apps/engine/optimize/__init__.py); the others keep the version's values.
    method = models.CharField(max_length=16, choices=Method.choices, default=Method.GRID)
    space = models.JSONField()
    metric = models.CharField(max_length=32, default="sharpe", help_text="ranked by, higher first")
    samples = models.PositiveIntegerField(null=True, blank=True, help_text="random search only")
    seed = models.BigIntegerField(null=True, blank=True, help_text="random search only")
    # Walk-forward windows, in bars of the timeframe; step defaults to out_of_sample.
    in_sample = models.PositiveIntegerField(null=True, blank=True)
    out_of_sample = models.PositiveIntegerField(null=True, blank=True)
    step = models.PositiveIntegerField(null=True, blank=True)
    anchored = models.BooleanField(default=False, help_text="in-sample windows start at bar 0")
    overfit_threshold = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.5"),
        help_text="flag overfitting when out-of-sample / in-sample falls below this",
    )

    # The plan, fixed at creation: full parameter sets in job order, the combinations the
    # template refused ({params, field, reason}), and the bar count the windows assume.
    combinations = models.JSONField(default=list, editable=False)
    skipped = models.JSONField(default=list, editable=False)
    candle_count = models.PositiveIntegerField(default=0)
    job_count = models.PositiveIntegerField(default=0, help_text="backtests in the plan")
    chunk_size = models.PositiveIntegerField(default=1)
    chunk_count = models.PositiveIntegerField(default=1)
    # Bumped once per chunk, in the transaction that writes the chunk's rows.
    chunks_done = models.PositiveIntegerField(default=0)

    # queued -> running -> done | failed | cancelled; only services and the worker change
    # it, always by conditional UPDATE so two writers cannot both win.
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    progress = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(100)], help_text="percent, 0..100"
    )
    error = models.TextField(blank=True, help_text="why the run failed, shown to the owner")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Written once, by the chunk that finishes the task: the best row (grid and random) or
    # the walk-forward windows and verdict (WalkForwardResult.as_dict() without curves).
    summary = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.CheckConstraint(condition=models.Q(end__gt=models.F("start")), name="opt_range"),
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="opt_progress"),
            models.CheckConstraint(
                condition=models.Q(chunks_done__lte=models.F("chunk_count")), name="opt_chunks"
            ),
        ]

    def __str__(self) -> str:
        return f"optimisation #{self.pk} ({self.symbol} {self.timeframe})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def is_walk_forward(self) -> bool:
        return self.method == self.Method.WALK_FORWARD

    @property
    def template(self) -> str:
        """The engine template the version runs (only template versions are optimised)."""
        return str(self.strategy_version.template)

    @property
    def metric_label(self) -> str:
        return METRIC_LABELS.get(self.metric, self.metric)

    @property
    def label(self) -> str:
        return f"{self.symbol} {self.timeframe}"

    @property
    def varied(self) -> list[str]:
        """The parameters searched, in the order they were given."""
        return list(self.space)


class OptimizationChunk(models.Model):
    """One share of the jobs; `done_at` is set once, by the delivery that stores its rows.
    `started_at` is when a delivery last began it: a chunk waiting in the queue has none, so
    the stale sweep never takes a queued chunk for a dead worker."""

    task = models.ForeignKey(OptimizationTask, on_delete=models.CASCADE, related_name="chunks")
    number = models.PositiveIntegerField(help_text="0-based; covers jobs [n*size, (n+1)*size)")
    started_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("task", "number")
        constraints = [models.UniqueConstraint(fields=("task", "number"), name="opt_chunk_number")]

    def __str__(self) -> str:
        return f"chunk {self.number} of {self.task_id}"


class OptimizationRow(models.Model):
    """One backtest of the search: a parameter set on the whole range (grid, random) or on
    one walk-forward window's in-sample bars."""

    task = models.ForeignKey(OptimizationTask, on_delete=models.CASCADE, related_name="rows")
    number = models.PositiveIntegerField(help_text="job number, in plan order")
    window = models.PositiveIntegerField(null=True, blank=True, help_text="walk-forward only")
    params = models.JSONField()
    # The ranked metric's value; null when it is undefined (no trades, so no Sharpe).
    score = models.FloatField(null=True, blank=True)
    metrics = models.JSONField(help_text="Metrics.as_dict() of apps/engine/metrics.py")

    class Meta:
        ordering = ("task", "number")
        constraints = [models.UniqueConstraint(fields=("task", "number"), name="opt_row_number")]
        indexes = [models.Index(fields=("task", "window", "score"), name="opt_row_rank")]

    def __str__(self) -> str:
        return f"row {self.number} of {self.task_id}"
