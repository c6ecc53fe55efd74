"""Ticks: closed candles through the paper broker, the strategy, risk and orders.

`bot_ticks_run(run_ids=..., candle_time=...)` ticks a batch of runs on one candle (the
scheduler puts runs due on the same candle of the same feed in one message, schedule.py)
in ONE transaction (DESIGN.md §4), so each run's tick either happened completely or not at
all:

1. claim: lock the batch's run rows (in id order; one tick per bot at a time) and insert
   their `Tick` rows in one statement (unique per run and candle: a run whose row exists
   was ticked before, by this message delivered earlier or by another one, and is
   skipped); a candle older than `BOTS_TICK_MAX_LAG_SECONDS` behind its close is dropped
   (counted);
2. the warmup windows, loaded once per series, and the paper books of the batch's
   accounts, locked and loaded once (`execution.paper_books_open`);
3. the candle through each book (fills), then each run's own fills booked to its own P&L
   (run_pnl.py, one query for the batch);
4. per run: the strategy's decision, risk and orders (tick_trade.py); an exception there
   rolls the batch back, and the batch runs again without that run, which then fails
   alone (`bot_run_fail`; no savepoint per run: failures are rare, round trips are not);
5. every run's logs, snapshots, Tick rows, run fields, account risk and books written in
   bulk; the audit events last, in one insert (the audit chain's lock is global); cards
   pushed on commit.

A worker killed mid-batch commits nothing: the runs' leases bring the candle back and the
Tick rows make any repeat harmless (CEL-1, CEL-3). An error outside any one run's
strategy step (a bug, a broken book) retries the batch one run at a time, so it lands on
the run that causes it and other bots never notice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from apps.audit.services import audit_record_many
from apps.bots import engine_state, execution, feeds, push, run_pnl, tick_trade
from apps.bots.bulk import rows_insert, rows_update
from apps.bots.models import AccountRisk, BotLog, BotRun, Tick
from apps.bots.services.lifecycle import bot_run_fail, tick_row_claim
from apps.bots.tick_trade import BatchContext, TickWork
from apps.engine.candles import CandleArrays
from apps.engine.script_backtest import ScriptBacktestError

__all__ = ["bot_tick_overrun", "bot_tick_run", "bot_ticks_run"]

logger = logging.getLogger(__name__)

RUN_FIELDS = [
    "status",
    "ended_at",
    "memory",
    "risk_state",
    "next_due_at",
    "last_candle_at",
    "last_tick_at",
    "ticks_done",
    "equity_last",
    "realized_pnl",
    "consecutive_losses",
    "cooldown_until",
    "updated_at",
]


UNREAD = [
    "created_at",
    "bot__created_at",
    "bot__updated_at",
    "bot__archived_at",
    "bot__account__api_key",
    "bot__account__api_secret",
    "bot__account__passphrase",
    "bot__account__created_at",
    "bot__account__updated_at",
    "bot__account__label",
    "bot__account__key_fingerprint",
    "bot__account__key_last4",
    "bot__account__key_ip_restricted",
]


class TickFailed(Exception):
    """The tick cannot go on for this bot; the message becomes the run's last_error."""


class _RunFailed(Exception):
    """One run of the batch failed: the batch rolls back and goes on without it."""

    def __init__(self, run_id: int, error: str, printed: str = "") -> None:
        super().__init__(error)
        self.run_id, self.error, self.printed = run_id, error, printed


class Batch:
    """The runs of one message and what happened to each; `current` is the run whose
    strategy runs now (tasks.py counts it dropped when the soft time limit strikes)."""

    def __init__(self, run_ids: Sequence[int], candle_time: datetime) -> None:
        self.run_ids = list(run_ids)
        self.candle_time = candle_time
        self.outcomes: dict[int, str] = {}
        self.failures: dict[int, str] = {}
        self.printed: dict[int, str] = {}
        self.current: int | None = None


def bot_tick_run(
    *, run_id: int, candle_time: datetime, now: Callable[[], datetime] = timezone.now
) -> str:
    """Tick one run (a batch of one); see `bot_ticks_run` for the outcomes."""
    return bot_ticks_run(run_ids=[run_id], candle_time=candle_time, now=now)[run_id]


def bot_ticks_run(
    *,
    run_ids: Sequence[int],
    candle_time: datetime,
    now: Callable[[], datetime] = timezone.now,
    batch: Batch | None = None,
) -> dict[int, str]:
    """Tick each run of `run_ids` on the candle opening at `candle_time`; returns what
    happened to each: "done", "dropped", "duplicate" (already ticked), "skipped" (not
    running or paused), "retry" (the candles or the database cannot be had now; nothing
    was written) or "failed" (the run is FAILED now)."""
    batch = batch or Batch(run_ids, candle_time)
    failed: dict[int, _RunFailed] = {}
    try:
        while True:
            try:
                with transaction.atomic():
                    _batch_run(batch, now, exclude=set(failed))
                break
            except _RunFailed as exc:
                failed[exc.run_id] = exc
    except (OperationalError, InterfaceError) as exc:
        # The database itself is unreachable (full, restarting): not the bots' fault, and
        # nothing was written. Drop the broken connection; the leases bring the ticks back.
        logger.warning("bot runs %s: database unavailable, retrying later: %s", run_ids, exc)
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()
        return dict.fromkeys(batch.run_ids, "retry")
    except SoftTimeLimitExceeded:
        raise  # tasks.bot_ticks counts the current run's candle as dropped
    except Exception as exc:
        if len(batch.run_ids) > 1:
            logger.exception("tick batch on %s failed; ticking its runs one by one", candle_time)
            outcomes: dict[int, str] = {}
            for run_id in batch.run_ids:
                outcomes.update(bot_ticks_run(run_ids=[run_id], candle_time=candle_time, now=now))
            return outcomes
        logger.exception("bot run %s failed on %s", batch.run_ids[0], candle_time)
        bot_run_fail(run_id=batch.run_ids[0], error=_error(exc), candle_time=candle_time)
        return {batch.run_ids[0]: "failed"}
    for run_id, failure in failed.items():
        _script_output_keep(run_id, candle_time, failure.printed)
        bot_run_fail(run_id=run_id, error=failure.error, candle_time=candle_time)
        batch.outcomes[run_id] = "failed"
    return batch.outcomes


def _error(exc: BaseException) -> str:
    if isinstance(exc, (TickFailed, feeds.FeedError, ScriptBacktestError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _batch_run(batch: Batch, now: Callable[[], datetime], *, exclude: set[int]) -> None:
    batch.failures, batch.current = {}, None
    # The batch's runs share a few versions: each is loaded once (prefetch), not joined into
    # every row. Columns a tick never reads stay behind (every value loaded costs Python
    # time, a batch loads thousands), an account's keys above all (paper books only).
    runs = list(
        BotRun.objects.select_for_update(of=("self",))
        .select_related("bot__account")
        .defer(*UNREAD)
        .prefetch_related("bot__strategy_version__strategy")
        .filter(pk__in=[run_id for run_id in batch.run_ids if run_id not in exclude])
        .order_by("pk")
    )
    batch.outcomes = dict.fromkeys(batch.run_ids, "skipped")
    started = now()
    due = _claim(batch, runs, started)
    works = _windows(batch, due)
    if not works:
        _failures(batch)
        return
    books = execution.paper_books_open(
        accounts=[w.run.bot.account for w in works],
        quotes={w.run.bot.account_id: execution.quote_of(w.run.bot.symbols) for w in works},
    )
    for work in works:
        tick_trade.candle_fills(work, books.broker(work.run.bot.account_id))
    _own_fills(works)
    context = _context(works)
    for work in works:
        _trade_one(batch, work, books, context)
    _finish(batch, works, started, now, books, context)


def _claim(batch: Batch, runs: list[BotRun], started: datetime) -> list[BotRun]:
    """The runs that tick this candle now, their Tick rows inserted; the others' outcomes."""
    lag = timedelta(seconds=float(getattr(settings, "BOTS_TICK_MAX_LAG_SECONDS", 300)))
    candle_time = batch.candle_time
    wanted: dict[int, str] = {}
    for run in runs:
        if run.status not in (BotRun.Status.RUNNING, BotRun.Status.STOPPING) or run.paused_at:
            continue
        if run.last_candle_at is not None and candle_time <= run.last_candle_at:
            batch.outcomes[run.pk] = "duplicate"
            continue
        late = started - feeds.closes_at(run.bot, run, candle_time) > lag
        dropped = run.status == BotRun.Status.RUNNING and late
        wanted[run.pk] = Tick.Status.DROPPED if dropped else Tick.Status.RUNNING
    claimed = _tick_rows_claim(wanted, candle_time, started)
    due = []
    for run in runs:
        if run.pk not in wanted:
            continue
        if run.pk not in claimed:
            batch.outcomes[run.pk] = "duplicate"
        elif wanted[run.pk] == Tick.Status.DROPPED:
            _dropped(run, candle_time, started, note="older than the allowed lag")
            batch.outcomes[run.pk] = "dropped"
        else:
            run.tick_id = claimed[run.pk]  # type: ignore[attr-defined]
            due.append(run)
    return due


def _tick_rows_claim(wanted: dict[int, str], candle_time: datetime, at: datetime) -> dict[int, int]:
    """INSERT ... ON CONFLICT DO NOTHING of the batch's (run, candle) Tick rows: the ids
    of the rows inserted, by run (a run missing there was ticked, dropped or failed)."""
    if not wanted:
        return {}
    rows = [
        (run_id, candle_time, status, at, None if status == Tick.Status.RUNNING else at)
        for run_id, status in sorted(wanted.items())
    ]
    # Only placeholders are joined into the statement; every value is a parameter.
    values = ", ".join(["(%s, %s, %s, %s, %s, 0, '')"] * len(rows))
    sql = (
        "INSERT INTO bots_tick (run_id, candle_time, status, started_at, finished_at, orders,"  # noqa: S608
        f" note) VALUES {values} ON CONFLICT (run_id, candle_time) DO NOTHING"
        " RETURNING run_id, id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [value for row in rows for value in row])
        return {int(run_id): int(tick_id) for run_id, tick_id in cursor.fetchall()}


def _windows(batch: Batch, due: list[BotRun]) -> list[TickWork]:
    """Each due run's work with its warmup windows (one load per series and start); a run
    whose candles cannot be had now is left for later (its Tick row removed)."""
    memo: dict[tuple[object, ...], CandleArrays | Exception] = {}
    specs: dict[tuple[object, ...], Any] = {}
    works, retry = [], []
    for run in due:
        bot = run.bot
        windows: dict[str, CandleArrays] = {}
        problem: Exception | None = None
        for symbol in bot.symbols:
            key = (bot.feed, bot.market_exchange, bot.account.exchange, symbol, bot.timeframe)
            key += (bot.replay_start,)
            if key not in memo:
                try:
                    memo[key] = feeds.window(bot, symbol, batch.candle_time)
                except (feeds.FeedError, feeds.FeedUnavailable) as exc:
                    memo[key] = exc
            found = memo[key]
            if isinstance(found, Exception):
                problem = found
                break
            windows[symbol] = found
        if isinstance(problem, feeds.FeedUnavailable):
            logger.warning("bot run %s: candles unavailable, retrying later: %s", run.pk, problem)
            batch.outcomes[run.pk] = "retry"
            retry.append(run.tick_id)  # type: ignore[attr-defined]
        elif problem is not None:
            batch.failures[run.pk] = str(problem)
        else:
            try:
                spec = _spec(specs, run)
            except Exception as exc:  # a version the engine refuses fails its bot alone
                batch.failures[run.pk] = _error(exc)
                continue
            close = batch.candle_time + feeds.bar(bot)
            works.append(TickWork(run, batch.candle_time, close, windows, spec))
    if retry:
        Tick.objects.filter(pk__in=retry).delete()
    return works


def _spec(specs: dict[tuple[object, ...], Any], run: BotRun) -> Any:
    """The run's strategy spec, built once per version and parameters in a batch (specs
    are frozen: the runs of a batch may share one)."""
    bot = run.bot
    key = (bot.strategy_version_id, repr(sorted((bot.params or {}).items())))
    if key not in specs:
        specs[key] = engine_state.bot_strategy_spec(bot)
    return specs[key]


def _own_fills(works: list[TickWork]) -> None:
    """Every fill of the batch's runs' orders not booked yet (one query), to each run."""
    fills = run_pnl.run_fills_unbooked(work.run for work in works)
    for work in works:
        if work.run.pk in fills:
            tick_trade.own_fills_book(work, fills[work.run.pk])


def _context(works: list[TickWork]) -> BatchContext:
    accounts = sorted({work.run.bot.account_id for work in works})
    rows = {row.account_id: row for row in AccountRisk.objects.filter(account_id__in=accounts)}
    missing = [account_id for account_id in accounts if account_id not in rows]
    if missing:
        # First ticks on new accounts: one insert for all (a racing first use of the same
        # account is skipped by the unique key), then read back what is stored.
        AccountRisk.objects.bulk_create(
            [AccountRisk(account_id=account_id) for account_id in missing], ignore_conflicts=True
        )
        rows.update({r.account_id: r for r in AccountRisk.objects.filter(account_id__in=missing)})
    return BatchContext(account_risk=rows)


def _trade_one(
    batch: Batch, work: TickWork, books: execution.PaperBooks, context: BatchContext
) -> None:
    """The run's decisions and orders; a failure becomes `_RunFailed` (see the module)."""
    run = work.run
    batch.current = run.pk  # left set when the soft time limit strikes (tasks.py)
    try:
        tick_trade.trade(work, books.broker(run.bot.account_id), context)
    except (SoftTimeLimitExceeded, OperationalError, InterfaceError):
        raise
    except Exception as exc:
        if not isinstance(exc, (TickFailed, feeds.FeedError, ScriptBacktestError)):
            logger.exception("bot run %s failed on %s", run.pk, batch.candle_time)
        printed = exc.log if isinstance(exc, ScriptBacktestError) else ""
        raise _RunFailed(run.pk, _error(exc), printed) from exc
    batch.current = None


def _finish(
    batch: Batch,
    done: list[TickWork],
    started: datetime,
    now: Callable[[], datetime],
    books: execution.PaperBooks,
    context: BatchContext,
) -> None:
    rows_insert([log for work in done for log in work.logs])
    rows_insert([w.snapshot for w in done if w.snapshot is not None])
    finished = now()
    ticks = []
    for work in done:
        run, bot = work.run, work.run.bot
        if run.status == BotRun.Status.RUNNING:
            run.memory = work.memory or run.memory
            run.next_due_at = feeds.closes_at(bot, run, work.candle_time + feeds.bar(bot))
        run.last_candle_at = work.candle_time
        run.last_tick_at = run.updated_at = finished
        run.ticks_done += 1
        run.equity_last = work.equity
        close = feeds.closes_at(bot, run, work.candle_time)
        delay = max(0, int((finished - close).total_seconds() * 1000))
        ticks.append(
            Tick(
                pk=run.tick_id,  # type: ignore[attr-defined]
                status=Tick.Status.DONE,
                finished_at=finished,
                delay_ms=delay,
                orders=work.orders,
            )
        )
        batch.outcomes[run.pk] = "done"
    rows_update([w.run for w in done], RUN_FIELDS)
    rows_update(ticks, ["status", "finished_at", "delay_ms", "orders"])
    changed = [context.account_risk[a] for a in sorted(context.account_risk_changed)]
    for row in changed:
        row.updated_at = finished
    rows_update(changed, ["state", "updated_at"])
    books.save()
    # Audit writes last: the chain's advisory lock is held from here to the commit.
    audit_record_many(events=[event for work in done for event in work.audits])
    _failures(batch)
    push.bots_push_on_commit(
        [push.CardRef(w.run.pk, w.run.bot_id, w.run.bot.owner_id) for w in done]
    )


def _failures(batch: Batch) -> None:
    """The runs that failed in this batch: FAILED, audited, their Tick rows failed."""
    for run_id, error in batch.failures.items():
        Tick.objects.filter(run_id=run_id, candle_time=batch.candle_time).update(
            status=Tick.Status.FAILED, finished_at=timezone.now(), note=error[:200]
        )
        _script_output_keep(run_id, batch.candle_time, batch.printed.get(run_id, ""))
        bot_run_fail(run_id=run_id, error=error, candle_time=batch.candle_time)
        batch.outcomes[run_id] = "failed"


def _dropped(run: BotRun, candle_time: datetime, at: datetime, *, note: str) -> None:
    Tick.objects.filter(run=run, candle_time=candle_time).update(finished_at=at, note=note)
    run.ticks_dropped += 1
    run.last_candle_at = candle_time
    run.next_due_at = at
    run.save(update_fields=["ticks_dropped", "last_candle_at", "next_due_at", "updated_at"])


def _script_output_keep(run_id: int, candle_time: datetime, printed: str) -> None:
    """What a failing script printed, kept in the bot log (its tick itself rolled back)."""
    lines = [line for line in printed.splitlines() if line.strip()][-50:]
    if not lines:
        return
    bot_id = BotRun.objects.filter(pk=run_id).values_list("bot_id", flat=True).first()
    BotLog.objects.bulk_create(
        BotLog(
            bot_id=bot_id,
            run_id=run_id,
            candle_time=candle_time,
            source=BotLog.Source.SCRIPT,
            message=line,
        )
        for line in lines
    )


def bot_tick_overrun(*, run_id: int, candle_time: datetime) -> None:
    """The tick hit its soft time limit (and rolled back): count the candle as dropped
    and let the bot go on with the next one."""
    with transaction.atomic():
        run = BotRun.objects.select_for_update().get(pk=run_id)
        at = timezone.now()
        if (
            tick_row_claim(
                run_id=run.pk, candle_time=candle_time, at=at, status=Tick.Status.DROPPED
            )
            is None
        ):
            return
        _dropped(run, candle_time, at, note="over the time limit")
        BotLog.objects.create(
            bot_id=run.bot_id,
            run=run,
            candle_time=candle_time,
            level=BotLog.Level.WARNING,
            message="tick dropped: it ran over its time limit",
        )
