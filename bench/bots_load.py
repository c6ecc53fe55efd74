"""Load: N paper bots (default 1,000) on a 1m replay, ticked by ONE worker process.

Prints ticks per second and the p50/p99 delay from each candle's close (as the replay feed
sees it) to its tick's commit (`Tick.delay_ms`). The target (issue 6) is 1,000 bots per
worker with p99 under 1 s.

Each bot has its own paper account and runs an SMA cross (5/20) on synthetic 1m candles
(exchange "benchmark", BENCH/USDT). Bots are started the way users start them, spread over
one candle interval (`--speed` seconds per candle), so their candles close at different
moments; `--aligned` starts them all at once instead (every bot's candle closes at the
same instant, the real case for 1m bots and the worst one: the last batch's delay is N x
a tick's cost within a batch). The scheduler puts runs due on the same candle into
messages of BOTS_TICK_BATCH runs (schedule.py, `--batch`), claimed up to
BOTS_SCHEDULE_AHEAD_SECONDS before the close and waiting in the worker with an ETA at it;
this script plays beat: it runs the scheduler every `--poll` seconds in-process. A run
that does not finish within its timeout still prints the figures of the ticks done, after
an INCOMPLETE line.

Against a worker you started yourself (same DATABASE_URL / REDIS_URL):
    celery -A config worker -Q ticks -c 1
    python bench/bots_load.py --bots 1000
or let the script start and stop one with --start-worker.

It writes to the database in DATABASE_URL (a bench user, accounts, bots and candles):
point it at a development database, never production.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
# Measure as production runs: DEBUG keeps every SQL statement (and formats it) in memory.
os.environ.setdefault("DJANGO_DEBUG", "0")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db.models import Max, Min  # noqa: E402
from django.utils import timezone  # noqa: E402

from apps.accounts.models import User  # noqa: E402
from apps.bots.models import Bot, BotRun, Tick  # noqa: E402
from apps.bots.schedule import bots_schedule  # noqa: E402
from apps.bots.services.lifecycle import bot_run_start  # noqa: E402
from apps.engine.candles import CandleArrays  # noqa: E402
from apps.exchanges.models import ExchangeAccount, PaperBalance  # noqa: E402
from apps.market.selectors import candle_series_count  # noqa: E402
from apps.market.services import candles_store  # noqa: E402
from apps.strategies.services import strategy_create  # noqa: E402
from bench.backtest_celery import start_worker, stop_worker  # noqa: E402

BENCH_EMAIL = "bots-bench-{stamp}@example.invalid"
EXCHANGE, SYMBOL = "benchmark", "BENCH/USDT"
START = datetime(2024, 1, 1, tzinfo=UTC)
MINUTES = 2_000


def synthetic_minutes() -> CandleArrays:
    rng = np.random.default_rng(7)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, MINUTES)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    spread = np.abs(rng.normal(0.0, 0.001, MINUTES)) * close
    times = np.datetime64(START.replace(tzinfo=None), "ns") + np.arange(MINUTES) * np.timedelta64(
        60, "s"
    )
    return CandleArrays(
        times,
        open_,
        np.maximum(open_, close) + spread,
        np.minimum(open_, close) - spread,
        close,
        rng.uniform(1, 100, MINUTES),
    )


def ensure_candles() -> None:
    if candle_series_count(exchange=EXCHANGE, symbol=SYMBOL, timeframe="1m") < MINUTES:
        candles_store(
            exchange=EXCHANGE,
            symbol=SYMBOL,
            timeframe="1m",
            candles=synthetic_minutes(),
            source="bench:synthetic",
            actor_label="bench",
        )


def fresh_user() -> User:
    """A new bench user; earlier bench runs still active are stopped (kept for reading)."""
    BotRun.objects.filter(
        bot__owner__email__startswith="bots-bench-", status__in=BotRun.ACTIVE
    ).update(status=BotRun.Status.STOPPED)
    email = BENCH_EMAIL.format(stamp=int(time.time()))
    return User.objects.create_user(email=email, password=None)


def make_bots(user: User, count: int, speed: Decimal, offset: int) -> list[Bot]:
    _strategy, version = strategy_create(
        owner=user,
        name="Bench SMA",
        kind="template",
        template="sma_cross",
        params={"fast": 5, "slow": 20},
    )
    accounts = ExchangeAccount.objects.bulk_create(
        ExchangeAccount(owner=user, exchange="binance", label=f"bench {i}", mode="paper")
        for i in range(count)
    )
    PaperBalance.objects.bulk_create(
        PaperBalance(account=a, asset="USDT", amount=Decimal(10_000)) for a in accounts
    )
    return Bot.objects.bulk_create(
        Bot(
            owner=user,
            name=f"bench {i}",
            strategy_version=version,
            account=account,
            symbols=[SYMBOL],
            timeframe="1m",
            feed=Bot.Feed.REPLAY,
            market_exchange=EXCHANGE,
            replay_start=START + timedelta(minutes=offset),
            replay_seconds_per_candle=speed,
            risk_profile="aggressive",
        )
        for i, account in enumerate(accounts)
    )


def start_runs(bots: list[Bot], user: User, speed: float, aligned: bool) -> list[int]:
    ids = [bot_run_start(bot=bot, acting_user=user).pk for bot in bots]
    t0 = timezone.now() + timedelta(seconds=2)
    for index, run_id in enumerate(ids):
        lag = 0.0 if aligned else speed * index / len(ids)
        anchor = t0 + timedelta(seconds=lag)
        BotRun.objects.filter(pk=run_id).update(replay_anchor=anchor, next_due_at=anchor)
    return ids


def purge_ticks() -> int:
    """Drop tick messages an earlier, interrupted bench left in the queue (they would sit in
    front of this run's ticks and count as its delay)."""
    from config.celery import app

    with app.connection_for_write() as conn:
        return int(conn.default_channel.queue_purge("ticks") or 0)


def play_beat(run_ids: list[int], candles: int, poll: float, timeout: float) -> bool:
    """Be beat until every run ticked `candles` candles; False after `timeout` seconds."""
    want = len(run_ids) * candles
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        bots_schedule()
        done = Tick.objects.filter(run_id__in=run_ids).count()
        if done >= want:
            return True
        time.sleep(poll)
    print(f"INCOMPLETE: only {done} of {want} ticks after {timeout:.0f} s (figures below)")
    return False


def report(run_ids: list[int], candles: int) -> None:
    ticks = Tick.objects.filter(run_id__in=run_ids).exclude(finished_at__isnull=True)
    done = ticks.filter(status=Tick.Status.DONE)
    span = ticks.aggregate(first=Min("started_at"), last=Max("finished_at"))
    seconds = (span["last"] - span["first"]).total_seconds()
    delays = np.array(list(done.values_list("delay_ms", flat=True)), dtype=np.float64)
    dropped = ticks.filter(status=Tick.Status.DROPPED).count()
    failed = BotRun.objects.filter(pk__in=run_ids, status=BotRun.Status.FAILED).count()
    print(
        f"bots={len(run_ids)} candles={candles} ticks={len(delays)} dropped={dropped} "
        f"failed_runs={failed}"
    )
    print(f"ticks/s={len(delays) / seconds:.1f} over {seconds:.1f} s")
    print(
        f"delay candle close -> tick done: p50={np.percentile(delays, 50):.0f} ms "
        f"p99={np.percentile(delays, 99):.0f} ms max={delays.max():.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bots", type=int, default=1000)
    parser.add_argument("--candles", type=int, default=3, help="candles each bot ticks")
    parser.add_argument("--speed", type=float, default=60.0, help="seconds per 1m candle")
    parser.add_argument("--poll", type=float, default=0.2, help="scheduler interval (beat)")
    parser.add_argument("--aligned", action="store_true", help="all candles close at once")
    parser.add_argument("--start-worker", action="store_true")
    parser.add_argument("--batch", type=int, help="runs per tick message (BOTS_TICK_BATCH)")
    args = parser.parse_args()
    if args.batch:
        # This process plays beat, and beat cuts the batches (schedule.py).
        settings.BOTS_TICK_BATCH = args.batch
    ensure_candles()
    user = fresh_user()
    purged = purge_ticks()
    if purged:
        print(f"purged {purged} tick messages left by an earlier run")
    # Start late enough in the series for a full SMA warmup before the first tick.
    bots = make_bots(user, args.bots, Decimal(str(args.speed)), offset=100)
    worker = start_worker("ticks", "bench_bots_worker.log") if args.start_worker else None
    try:
        run_ids = start_runs(bots, user, args.speed, args.aligned)
        timeout = args.speed * (args.candles + 2) + 120
        play_beat(run_ids, args.candles, args.poll, timeout)
    finally:
        if worker is not None:
            stop_worker(worker)
    BotRun.objects.filter(pk__in=run_ids).update(status=BotRun.Status.STOPPED)
    report(run_ids, args.candles)


if __name__ == "__main__":
    main()
