"""End-to-end speed of a multi-pair backtest through Celery: 10 pairs x 1 year of hourly candles.

Creates the task with the same service the page uses (`backtest_task_create`: validation,
task + pairs + audit, enqueue on commit), then waits until a real worker on the `backtests`
queue has run it, and prints the wall time from the create call to status "done", with the
queue wait and the worker's own run time. The target (issue 5) is under 10 s.

Data: by default 10 distinct synthetic symbols (seeded random walks, BENCH0/USDT..BENCH9/USDT
on exchange "benchmark", 2023 hourly, 8,760 candles each), imported once through the market
app's COPY import. `--real` uses the shipped real Binance BTC/USDT hourly candles for all 10
pairs (2020-06-09..2021-06-09), each pair with its own strategy settings.

Each pair gets its own strategy version (SMA/EMA crosses with different periods) and execution
settings (fees, some with stops, trailing stops or % sizing), like a real user's run.

Against a worker you started yourself (same DATABASE_URL / REDIS_URL):
    celery -A config worker -Q backtests -c 1
    python bench/backtest_celery.py
or let the script start and stop one:
    python bench/backtest_celery.py --start-worker [--runs 3]

It writes to the database in DATABASE_URL (a bench user, its strategies and tasks, and the
synthetic candles): point it at a development database, never production.
"""

from __future__ import annotations

import argparse
import os
import subprocess
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

from apps.accounts.models import User  # noqa: E402
from apps.backtests.models import BacktestTask  # noqa: E402
from apps.backtests.services import PairInput, backtest_task_create  # noqa: E402
from apps.engine.candles import CandleArrays  # noqa: E402
from apps.market.selectors import candle_series_count  # noqa: E402
from apps.market.services import candles_import_csv, candles_store  # noqa: E402
from apps.strategies.models import Strategy  # noqa: E402
from apps.strategies.services import strategy_create  # noqa: E402
from bench.processes import process_start, process_stop  # noqa: E402

BENCH_EMAIL = "backtest-bench@example.invalid"
SYNTH_EXCHANGE = "benchmark"
SYNTH_START = datetime(2023, 1, 1, tzinfo=UTC)
HOURS = 8_760
REAL_START = datetime(2020, 6, 9, tzinfo=UTC)
PAIRS = 10
# (template, fast, slow) per pair; execution extras vary too (see pair_settings).
STRATEGIES = [
    ("sma_cross", 10, 30),
    ("sma_cross", 5, 20),
    ("ema_cross", 12, 26),
    ("sma_cross", 20, 50),
    ("ema_cross", 8, 21),
    ("sma_cross", 7, 25),
    ("ema_cross", 10, 40),
    ("sma_cross", 15, 60),
    ("ema_cross", 5, 15),
    ("sma_cross", 30, 90),
]


def synthetic_candles(seed: int) -> CandleArrays:
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 0.01, HOURS)
    close = 100.0 * (1 + seed) * np.exp(np.cumsum(steps))
    open_ = np.concatenate(([close[0]], close[:-1]))
    spread = np.abs(rng.normal(0.0, 0.004, HOURS)) * close
    start = np.datetime64(SYNTH_START.replace(tzinfo=None), "ns")
    times = start + np.arange(HOURS) * np.timedelta64(3600, "s")
    return CandleArrays(
        time=times,
        open=open_,
        high=np.maximum(open_, close) + spread,
        low=np.minimum(open_, close) - spread,
        close=close,
        volume=rng.uniform(1, 100, HOURS),
    )


def ensure_candles(real: bool) -> tuple[str, list[str], datetime, datetime]:
    if real:
        if candle_series_count(exchange="binance", symbol="BTC/USDT", timeframe="1h") < 30_000:
            candles_import_csv(
                path=ROOT / "data" / "candles" / "BTC-USDT_1h.csv",
                exchange="binance",
                symbol="BTC/USDT",
                timeframe="1h",
                actor_label="bench",
            )
        return "binance", ["BTC/USDT"] * PAIRS, REAL_START, REAL_START + timedelta(days=365)
    symbols = [f"BENCH{i}/USDT" for i in range(PAIRS)]
    for seed, symbol in enumerate(symbols):
        if candle_series_count(exchange=SYNTH_EXCHANGE, symbol=symbol, timeframe="1h") < HOURS:
            candles_store(
                exchange=SYNTH_EXCHANGE,
                symbol=symbol,
                timeframe="1h",
                candles=synthetic_candles(seed),
                source="bench:synthetic",
                actor_label="bench",
            )
    return SYNTH_EXCHANGE, symbols, SYNTH_START, SYNTH_START + timedelta(hours=HOURS)


def bench_versions(user: User) -> list[int]:
    ids = []
    for template, fast, slow in STRATEGIES:
        name = f"bench {template} {fast}/{slow}"
        strategy = Strategy.objects.filter(owner=user, name=name).first()
        if strategy is None:
            strategy, version = strategy_create(
                owner=user,
                name=name,
                kind="template",
                template=template,
                params={"fast": fast, "slow": slow},
            )
        else:
            version = strategy.versions.order_by("-number").first()
        ids.append(version.pk)
    return ids


def pair_settings(index: int) -> dict:
    extras: dict = {"taker_fee": Decimal("0.001"), "slippage": Decimal("0.0005")}
    if index % 3 == 1:
        extras["stop_loss"] = Decimal("0.05")
    if index % 3 == 2:
        extras["trailing_stop"] = Decimal("0.08")
    if index % 4 == 3:
        extras |= {"sizing": "percent", "size_value": Decimal("0.5")}
    return extras


def run_once(user, exchange, symbols, start, end, versions, timeout: float) -> dict:
    pairs = [
        PairInput(
            symbol=symbol,
            timeframe="1h",
            strategy_version_id=versions[index],
            initial_capital=Decimal(10_000),
            **pair_settings(index),
        )
        for index, symbol in enumerate(symbols)
    ]
    began = time.perf_counter()
    task = backtest_task_create(
        owner=user,
        name=f"bench {datetime.now(tz=UTC):%H:%M:%S}",
        exchange=exchange,
        market_type="spot",
        start=start,
        end=end,
        pairs=pairs,
    )
    created = time.perf_counter()
    while True:
        task.refresh_from_db(fields=["status", "progress", "error", "started_at", "finished_at"])
        if task.status not in BacktestTask.ACTIVE:
            break
        if time.perf_counter() - began > timeout:
            raise SystemExit(
                f"task {task.pk} still {task.status} at {task.progress} % after {timeout:.0f} s:"
                " is a worker consuming the 'backtests' queue with this DATABASE_URL/REDIS_URL?"
            )
        time.sleep(0.02)
    done = time.perf_counter()
    if task.status != "done":
        raise SystemExit(f"task {task.pk} ended {task.status}: {task.error}")
    task.refresh_from_db()
    run_seconds = (task.finished_at - task.started_at).total_seconds()
    queue_wait = (task.started_at - task.created_at).total_seconds()
    return {
        "task": task,
        "create": created - began,
        "wall": done - began,
        "queue_wait": queue_wait,
        "run": run_seconds,
    }


def start_worker(queue: str = "backtests", log_name: str = "bench_worker.log") -> subprocess.Popen:
    """A one-process worker on `queue`, logging to var/`log_name`; waits until it is ready."""
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue]
    return process_start([*command, "-c", "1", "-l", "info"], log_name=log_name, ready=b"ready.")


stop_worker = process_stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", action="store_true", help="real BTC/USDT 1h for all pairs")
    parser.add_argument("--runs", type=int, default=3, help="the first one is reported as cold")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--start-worker", action="store_true", help="start and stop a worker")
    args = parser.parse_args()

    user, _ = User.objects.get_or_create(email=BENCH_EMAIL)
    exchange, symbols, start, end = ensure_candles(args.real)
    versions = bench_versions(user)
    worker = start_worker() if args.start_worker else None
    try:
        runs = [
            run_once(user, exchange, symbols, start, end, versions, args.timeout)
            for _ in range(args.runs)
        ]
    finally:
        if worker is not None:
            stop_worker(worker)

    last = runs[-1]["task"]
    pairs = list(last.pairs.select_related("result").order_by("position"))
    candles = sum(p.result.candle_count for p in pairs)
    trades = sum(p.result.metrics["trade_count"] for p in pairs)
    data = "real BTC/USDT 1h" if args.real else "synthetic, 10 symbols"
    print(
        f"{len(pairs)} pairs x {candles // len(pairs):,} hourly candles ({data}), "
        f"{trades:,} trades in the last run"
    )
    print(f"{'run':>5} {'create':>9} {'queue wait':>11} {'worker run':>11} {'create->done':>13}")
    for number, run in enumerate(runs, start=1):
        label = "cold" if number == 1 else f"{number}"
        print(
            f"{label:>5} {run['create']:>8.3f}s {run['queue_wait']:>10.3f}s "
            f"{run['run']:>10.3f}s {run['wall']:>12.3f}s"
        )
    best = min(r["wall"] for r in runs)
    verdict = "OK" if max(r["wall"] for r in runs) < 10 else "OVER"
    print(
        f"target < 10 s end to end: {verdict} (best {best:.3f} s, "
        f"worst {max(r['wall'] for r in runs):.3f} s)"
    )
    print(
        f"aggregate of the last run: return {last.metrics['total_return'] * 100:+.2f} %, "
        f"max drawdown {last.metrics['max_drawdown'] * 100:.2f} %"
    )


if __name__ == "__main__":
    main()
