"""The candle store.

Layout, chosen for a table of many millions of rows that is bulk-loaded by COPY and read
back by range into numpy:

* `CandleSeries` names one (exchange, symbol, timeframe) once; each `Candle` row carries
  only its 4-byte series id instead of three repeated strings. Rows are narrower, and the
  one index is (series_id, open_time) instead of a three-text-column prefix.
* `Candle` has a composite primary key (series, open_time): it is both the uniqueness rule
  that makes re-imports idempotent (INSERT ... ON CONFLICT DO NOTHING) and the index every
  range read and the gap scan use. A surrogate bigint id would add 8 bytes per row and a
  second index to maintain on every bulk load, and nothing refers to single candles.
* Prices and volume are double precision (FloatField), not Decimal(38,18). Candles are
  market data, not accounting (DESIGN.md §5 keeps Decimal for money we own); every consumer
  is the vectorised float64 engine, so doubles load into numpy without any conversion, and
  a double (8 bytes) is a third of a numeric(38,18) on disk. Exchange prices have at most
  15 significant digits (the shipped files have at most 10), which a double holds exactly
  in the sense that the decimal text round-trips.
"""

from django.conf import settings
from django.db import models


class CandleSeries(models.Model):
    """One (exchange, symbol, timeframe): e.g. binance BTC/USDT 1h. Shared market data."""

    exchange = models.CharField(max_length=32, help_text="ccxt exchange id, e.g. binance")
    symbol = models.CharField(max_length=64, help_text="ccxt unified symbol, e.g. BTC/USDT")
    timeframe = models.CharField(max_length=8, help_text="ccxt timeframe, e.g. 1h, 1d, 1M")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "candle series"
        ordering = ("exchange", "symbol", "timeframe")
        constraints = [
            models.UniqueConstraint(
                fields=("exchange", "symbol", "timeframe"), name="market_series_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.exchange} {self.symbol} {self.timeframe}"


class Candle(models.Model):
    """One OHLCV candle; `open_time` is its UTC open time."""

    pk = models.CompositePrimaryKey("series", "open_time")
    # The primary key's leading column already indexes series_id, so no separate index.
    # No database FK constraint either: its per-row check, deferred to commit, doubled the
    # time of a 1M-candle load (bench/candles_io.py). Series are only ever created, never
    # deleted (PROTECT here, read-only admin), so the constraint would guard nothing.
    series = models.ForeignKey(
        CandleSeries,
        on_delete=models.PROTECT,
        related_name="candles",
        db_index=False,
        db_constraint=False,
    )
    open_time = models.DateTimeField()
    open = models.FloatField()
    high = models.FloatField()
    low = models.FloatField()
    close = models.FloatField()
    volume = models.FloatField()

    def __str__(self) -> str:
        return f"{self.series_id} {self.open_time:%Y-%m-%dT%H:%M}Z"


class CandleRow(models.Model):
    """Read-only view of `Candle` for the admin, which cannot list composite-key models.

    `market_candle_row` is a SQL view (migration 0001) adding a text key "series:epoch"; it
    is never written. Filtering and ordering by (series_id, open_time) still use the
    primary key index of the table underneath.
    """

    key = models.CharField(primary_key=True, max_length=40)
    series = models.ForeignKey(
        CandleSeries, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    open_time = models.DateTimeField()
    open = models.FloatField()
    high = models.FloatField()
    low = models.FloatField()
    close = models.FloatField()
    volume = models.FloatField()

    class Meta:
        managed = False
        db_table = "market_candle_row"
        verbose_name = "candle"
        unique_together = (("series", "open_time"),)

    def __str__(self) -> str:
        return self.key


class CandleDownload(models.Model):
    """One download of candles from an exchange (ccxt fetch_ohlcv), owned by who asked for it.

    The candles themselves are shared market data; this row is the job: its range, its
    progress and how it ended. A failed download can run again and continues from the last
    stored candle (apps/market/download.py).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="candle_downloads"
    )
    exchange = models.CharField(max_length=32)
    symbol = models.CharField(max_length=64)
    timeframe = models.CharField(max_length=8)
    start = models.DateTimeField(help_text="first candle open time wanted (inclusive)")
    end = models.DateTimeField(help_text="candles opening before this time (exclusive)")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0, help_text="0..100, share of the range covered")
    pages = models.PositiveIntegerField(default=0, help_text="candle pages fetched, all runs")
    candles_stored = models.PositiveIntegerField(default=0, help_text="new candles inserted")
    gaps_found = models.PositiveIntegerField(default=0)
    gaps = models.JSONField(default=list, blank=True, help_text="[start, end, missing] in range")
    error = models.TextField(blank=True, help_text="why the last run failed, shown to the owner")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"{self.exchange} {self.symbol} {self.timeframe} download #{self.pk}"
