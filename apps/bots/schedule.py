"""Which runs tick now (beat), and the reconcile of orders left unresolved by a crash.

`bots_schedule(now)` claims the runs due within the next `BOTS_SCHEDULE_AHEAD_SECONDS` in
one transaction (`FOR UPDATE SKIP LOCKED`, so two beats, or a beat and a tick holding a
run, never claim the same run twice), decides each one's next candle from its feed, and
enqueues `bot_ticks(run_ids, candle, not_before)` on commit with an ETA at the candle's
close (`feeds.ready_at`): the claim happens before the close, off the ticks' critical path,
and the worker starts the batch the moment the candle closes (the task refuses to start
earlier, tasks.py). Runs due on the same candle of the same series at the same moment go
together, in batches of `BOTS_TICK_BATCH` (script bots, each a sandbox child,
`BOTS_TICK_SCRIPT_BATCH`), so a worker loads the candles and writes the rows once per
batch (tick.py). When 1,000 bots' 1m candles close at the same moment this is what keeps
their delay under a second.
A claimed run's `next_due_at` moves `LEASE` ahead: the tick sets the real next due time
when it commits; if the message is lost (a worker killed before it acked, Redis
restarted) the lease runs out and the same candle is enqueued again. The Tick row's
uniqueness makes every repeat harmless (CEL-1, CEL-3). Nothing lives in a worker's
memory: after a restart the scheduler just goes on from each run's `last_candle_at`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.bots import execution, feeds
from apps.bots.bulk import rows_update
from apps.bots.models import Bot, BotOrder, BotRun
from apps.bots.services.lifecycle import bot_run_finish
from apps.engine.clock import FixedClock
from apps.engine.types import Order
from apps.strategies.models import StrategyKind

logger = logging.getLogger(__name__)

ACTIVE = (BotRun.Status.RUNNING, BotRun.Status.STOPPING)
LIVE_POLL = timedelta(seconds=1)


def lease() -> timedelta:
    # Longer than a busy worker's queue: a lease that expires while the first message still
    # waits in the queue only adds duplicates (harmless, but more work for that worker).
    return timedelta(seconds=float(getattr(settings, "BOTS_TICK_LEASE_SECONDS", 120)))


def tick_batch_size(*, script: bool) -> int:
    if script:
        return max(1, int(getattr(settings, "BOTS_TICK_SCRIPT_BATCH", 1)))
    return max(1, int(getattr(settings, "BOTS_TICK_BATCH", 50)))


def schedule_ahead() -> timedelta:
    # Longer than beat's interval plus a claim of every due run, so a run is claimed and
    # its message waits in the worker before its candle closes; far under the visibility
    # timeout (CEL-2: no ETA beyond it).
    return timedelta(seconds=float(getattr(settings, "BOTS_SCHEDULE_AHEAD_SECONDS", 3.0)))


def schedule_granule() -> timedelta:
    # Runs ready within one granule of each other share a message (and its ETA, the
    # latest of them): replays started apart close at scattered moments.
    return timedelta(seconds=float(getattr(settings, "BOTS_SCHEDULE_GRANULE_SECONDS", 0.2)))


Message = tuple[list[int], str, datetime | None]


def bots_schedule(
    *,
    now: datetime | None = None,
    enqueue: Callable[[list[int], str, datetime | None], None] | None = None,
) -> int:
    """Enqueue a tick for every run due now or within `schedule_ahead()`, in batches, each
    with an ETA at its candles' close; returns how many runs were enqueued."""
    now = now or timezone.now()
    horizon = now + schedule_ahead()
    send = enqueue or _enqueue
    batch = int(getattr(settings, "BOTS_SCHEDULE_BATCH", 5000))
    finished: list[BotRun] = []
    with transaction.atomic():
        runs = list(
            BotRun.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("bot")
            .defer("memory", "risk_state", "limits", "bot__params", "bot__risk_overrides")
            .annotate(script=Q(bot__strategy_version__strategy__kind=StrategyKind.SCRIPT))
            .filter(status__in=ACTIVE, paused_at__isnull=True, next_due_at__lte=horizon)
            .filter(bot__kind=Bot.Kind.STRATEGY)
            .order_by("next_due_at")[:batch]
        )
        groups: dict[tuple[object, ...], list[BotRun]] = {}
        ready: dict[int, datetime] = {}
        memo: dict[tuple[object, ...], datetime | None] = {}
        for run in runs:
            candle = _next(run, horizon, memo)
            if candle is feeds.REPLAY_OVER:
                finished.append(run)
                run.next_due_at = now + lease()
                continue
            due = None if candle is None else feeds.ready_at(run.bot, run, candle)
            if candle is None or due is None or due > horizon:
                run.next_due_at = due or now + LIVE_POLL
                continue
            run.next_due_at = max(due, now) + lease()
            ready[run.pk] = due
            groups.setdefault(_batch_key(run, candle, due, now), []).append(run)
        rows_update(runs, ["next_due_at"])
        messages = _batches(groups, ready, now)
        transaction.on_commit(lambda: [send(*message) for message in messages])
    for run in finished:
        if run.status == BotRun.Status.RUNNING:
            bot_run_finish(run=run)
    return sum(len(message[0]) for message in messages)


def _batch_key(run: BotRun, candle: datetime, due: datetime, now: datetime) -> tuple[object, ...]:
    """Runs with equal keys tick together: same candle, same series, ready within the same
    granule (all ready now: one), scripts apart."""
    bot = run.bot
    script = bool(getattr(run, "script", False))  # annotated by bots_schedule
    moment = 0 if due <= now else -((now - due) // schedule_granule())
    return (candle.isoformat(), bot.feed, bot.market_exchange, bot.timeframe, moment, script)


def _batches(
    groups: dict[tuple[object, ...], list[BotRun]], ready: dict[int, datetime], now: datetime
) -> list[Message]:
    messages: list[Message] = []
    for key, runs in groups.items():
        size = tick_batch_size(script=bool(key[-1]))
        for start in range(0, len(runs), size):
            part = runs[start : start + size]
            eta = max(ready[run.pk] for run in part)
            run_ids = sorted(run.pk for run in part)
            messages.append((run_ids, str(key[0]), eta if eta > now else None))
    return messages


def _next(
    run: BotRun, now: datetime, memo: dict[tuple[object, ...], datetime | None]
) -> datetime | None:
    """The run's next candle; runs replaying the same series share one query."""
    bot = run.bot
    if run.status == BotRun.Status.STOPPING:
        # A stop needs one more candle (to fill its sells), even past a replay's end.
        candle = feeds.next_candle(bot, run, now)
        return None if candle is feeds.REPLAY_OVER else candle
    key = (bot.feed, bot.market_exchange, tuple(bot.symbols[:1]), bot.timeframe)
    key += (run.last_candle_at, bot.replay_start if run.last_candle_at is None else None)
    if bot.feed == feeds.Bot.Feed.LIVE:
        key += (now,)
    if key not in memo:
        memo[key] = feeds.next_candle(bot, run, now)
    return memo[key]


def _enqueue(run_ids: list[int], candle_iso: str, eta: datetime | None = None) -> None:
    from apps.bots.tasks import bot_ticks

    if eta is None:
        bot_ticks.apply_async(args=[run_ids, candle_iso])
    else:
        bot_ticks.apply_async(args=[run_ids, candle_iso, eta.isoformat()], eta=eta)


def bot_orders_reconcile(*, older_than: timedelta = timedelta(seconds=30)) -> int:
    """Resolve orders a crash left PENDING_SUBMIT or UNKNOWN, by client order id against
    the account's broker: known there -> its status; unknown -> never placed (REJECTED).
    Returns how many were resolved."""
    cutoff = timezone.now() - older_than
    stuck = BotOrder.objects.filter(
        status__in=(BotOrder.Status.PENDING_SUBMIT, BotOrder.Status.UNKNOWN),
        updated_at__lt=cutoff,
        account__mode="paper",
    ).select_related("account")
    resolved = 0
    for account_id in sorted({order.account_id for order in stuck}):
        with transaction.atomic():
            orders = [o for o in stuck if o.account_id == account_id]
            account = orders[0].account
            with execution.account_broker(
                account=account,
                clock=FixedClock(timezone.now()),
                quote=execution.quote_of([orders[0].symbol]),
            ) as broker:
                for order in orders:
                    resolved += _resolve(order, broker.get_order(order.client_order_id))
    return resolved


def _resolve(order: BotOrder, known: Order | None) -> int:
    if known is None:
        order.status = BotOrder.Status.REJECTED
        order.message = "never reached the broker (resolved by the reconcile)"
    else:
        order.status = execution.order_status(known)
        order.exchange_order_id = order.exchange_order_id or order.client_order_id
    order.save(update_fields=["status", "message", "exchange_order_id", "updated_at"])
    logger.info("order %s reconciled to %s", order.client_order_id, order.status)
    return 1
