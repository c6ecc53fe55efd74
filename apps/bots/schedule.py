"""Which runs tick now (beat), and the reconcile of orders left unresolved by a crash.

`bots_schedule(now)` claims the due runs in one transaction (`FOR UPDATE SKIP LOCKED`, so
two beats, or a beat and a tick holding a run, never claim the same run twice), decides
each one's next candle from its feed, and enqueues `bot_ticks(run_ids, candle)` on commit:
runs due on the same candle of the same series go together, in batches of
`BOTS_TICK_BATCH` (script bots, each a sandbox child, `BOTS_TICK_SCRIPT_BATCH`), so a
worker loads the candles and writes the rows once per batch (tick.py). When 1,000 bots'
1m candles close at the same moment this is what keeps their delay under a second.
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


def bots_schedule(
    *, now: datetime | None = None, enqueue: Callable[[list[int], str], None] | None = None
) -> int:
    """Enqueue a tick for every due run, in batches; returns how many runs were enqueued."""
    now = now or timezone.now()
    send = enqueue or _enqueue
    batch = int(getattr(settings, "BOTS_SCHEDULE_BATCH", 5000))
    finished: list[BotRun] = []
    with transaction.atomic():
        runs = list(
            BotRun.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("bot")
            .defer("memory", "risk_state", "limits", "bot__params", "bot__risk_overrides")
            .annotate(script=Q(bot__strategy_version__strategy__kind=StrategyKind.SCRIPT))
            .filter(status__in=ACTIVE, paused_at__isnull=True, next_due_at__lte=now)
            .filter(bot__kind=Bot.Kind.STRATEGY)
            .order_by("next_due_at")[:batch]
        )
        groups: dict[tuple[object, ...], list[int]] = {}
        memo: dict[tuple[object, ...], datetime | None] = {}
        for run in runs:
            candle = _next(run, now, memo)
            if candle is feeds.REPLAY_OVER:
                finished.append(run)
                run.next_due_at = now + lease()
                continue
            due = None if candle is None else feeds.closes_at(run.bot, run, candle)
            if candle is None or due is None or due > now:
                run.next_due_at = due or now + LIVE_POLL
                continue
            run.next_due_at = now + lease()
            groups.setdefault(_batch_key(run, candle), []).append(run.pk)
        rows_update(runs, ["next_due_at"])
        messages = _batches(groups)
        transaction.on_commit(lambda: [send(run_ids, iso) for run_ids, iso in messages])
    for run in finished:
        if run.status == BotRun.Status.RUNNING:
            bot_run_finish(run=run)
    return sum(len(run_ids) for run_ids, _iso in messages)


def _batch_key(run: BotRun, candle: datetime) -> tuple[object, ...]:
    """Runs with equal keys tick together: same candle, same series, scripts apart."""
    bot = run.bot
    script = bool(getattr(run, "script", False))  # annotated by bots_schedule
    return (candle.isoformat(), bot.feed, bot.market_exchange, bot.timeframe, script)


def _batches(groups: dict[tuple[object, ...], list[int]]) -> list[tuple[list[int], str]]:
    messages = []
    for key, run_ids in groups.items():
        size = tick_batch_size(script=bool(key[-1]))
        for start in range(0, len(run_ids), size):
            messages.append((sorted(run_ids[start : start + size]), str(key[0])))
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


def _enqueue(run_ids: list[int], candle_iso: str) -> None:
    from apps.bots.tasks import bot_ticks

    bot_ticks.apply_async(args=[run_ids, candle_iso])


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
