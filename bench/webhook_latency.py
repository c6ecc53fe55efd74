"""TradingView webhook latency (issue 7, TV-3): alerts over HTTP on loopback to the running
web process, executed by a real worker on the "orders" queue.

After `--warmup` seconds (default 2) of alerts that are not measured (a running platform
has paid its first-request costs already), sends `--rate` alerts per second (default 50)
for `--seconds` (default 60) round-robin to
8 signal bots, each on its own Binance testnet account on the loopback fake exchange
(tests/fakes/exchange, run in a process of its own; `--venue paper` uses paper accounts
instead), each with its own risk profile and overrides (6 aggressive variants, one
balanced, one conservative; alerts alternate buy / close). It then waits for the worker
and prints, from the WebhookEvent stage timestamps:
  - request received -> exchange call sent (the order's create request about to go out to
    the exchange; for paper, the order placed on the paper book), p50/p99/max,
  - request received -> risk decided, for every executed alert (refusals included: the
    balanced and conservative bots hit their max trades per day, as they should),
and, measured by the sender, request sent -> response received.
Target: p99 under 50 ms to the exchange call.

Processes: by default the script starts daphne (the Procfile's web command) on --port and
a Celery worker on the "orders" queue, and stops them at the end; `--no-start` uses ones
you run yourself with the same DATABASE_URL / REDIS_URL. It writes a bench user, accounts,
bots and events to the database in DATABASE_URL: use a development database.

    python bench/webhook_latency.py                 # 50 req/s for 60 s
    python bench/webhook_latency.py --seconds 10    # a shorter run
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
os.environ.setdefault("DJANGO_DEBUG", "0")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from apps.accounts.models import User  # noqa: E402
from apps.bots.models import Bot  # noqa: E402
from apps.exchanges.services import exchange_account_create  # noqa: E402
from apps.signals.models import WebhookEvent  # noqa: E402
from apps.signals.services import SignalBotInput, signal_bot_create  # noqa: E402
from bench.processes import process_start, process_stop  # noqa: E402

PASSPHRASE = "bench-passphrase-0123456789"  # noqa: S105 (a bench fixture)
# (risk profile, overrides, default size mode, size)
BOTS = [
    ("aggressive", {"max_trades_per_day": 200}, "quote", Decimal(50)),
    ("aggressive", {"max_trades_per_day": 200, "position_pct": "0.5"}, "quote", Decimal(20)),
    ("aggressive", {"max_trades_per_day": 200, "risk_per_trade": "0.01"}, "equity_pct", Decimal(1)),
    (
        "aggressive",
        {"max_trades_per_day": 150, "max_exposure": "0.8"},
        "contracts",
        Decimal("0.001"),
    ),
    ("aggressive", {"max_trades_per_day": 200, "daily_loss_limit": "0.05"}, "quote", Decimal(10)),
    ("aggressive", {"max_trades_per_day": 200, "max_drawdown": "0.2"}, "profile", None),
    ("balanced", {}, "quote", Decimal(25)),
    ("conservative", {}, "quote", Decimal(15)),
]


# The fake exchange in a process of its own, so its HTTP threads do not share the bench
# sender's interpreter. Each testnet account (API key) has balances of its own there, so
# one bot's close never sells what another bot bought.
FAKE_EXCHANGE = """
import time
from decimal import Decimal
from tests.fakes.exchange import run_fake_exchange

with run_fake_exchange() as fake:
    fake.balances_per_key = {"USDT": Decimal("10000000")}
    fake.price_set("BTCUSDT", "30000")
    fake.price_set("ETHUSDT", "2000")
    print("fake exchange at", fake.base_url, flush=True)
    while True:
        time.sleep(3600)
"""


def start_fake_exchange() -> tuple[subprocess.Popen, str]:
    process = start("fake", [sys.executable, "-c", FAKE_EXCHANGE], b"fake exchange at")
    log = (ROOT / "var" / "bench_webhook_fake.log").read_text()
    base_url = log.split("fake exchange at", 1)[1].split()[0]
    return process, base_url


def setup_bots(run: str, venue: str) -> list[tuple[int, str]]:
    """A fresh bench user (so quotas and trade counts start at zero) and its signal bots."""
    user = User.objects.create_user(
        email=f"webhook-bench-{run}@example.invalid", password=None, max_exchange_accounts=50
    )
    bots = []
    for index, (profile, overrides, size_mode, size) in enumerate(BOTS):
        account = exchange_account_create(
            owner=user, exchange="binance", label=f"bench {index}", mode="paper"
        )
        testnet = None
        if venue == "testnet":
            testnet = exchange_account_create(
                owner=user,
                exchange="binance",
                label=f"bench testnet {index}",
                mode="testnet",
                api_key=f"bench-key-{run}-{index:02d}",
                api_secret=f"bench-secret-{run}-{index:02d}",
            )
        bot, secrets = signal_bot_create(
            owner=user,
            data=SignalBotInput(
                name=f"bench {index} {profile}",
                account_id=account.pk,
                symbols=["BTC/USDT", "ETH/USDT"],
                risk_profile=profile,
                risk_overrides=overrides,
                size_mode=size_mode,
                size_value=size,
                passphrase=PASSPHRASE,
            ),
        )
        if testnet is not None:
            # signal_bot_create still takes paper accounts only (live trading's issue).
            Bot.objects.filter(pk=bot.pk).update(account=testnet)
        bots.append((bot.pk, secrets.token))
    return bots


def start(
    name: str, command: list[str], ready: bytes, env: dict[str, str] | None = None
) -> subprocess.Popen:
    return process_start(command, log_name=f"bench_webhook_{name}.log", ready=ready, env=env)


class Sender:
    """One keep-alive connection per sender thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.local = threading.local()

    def send_alert(self, token: str, n: int, price: float) -> tuple[int, float]:
        return self.post(f"/hooks/tv/{token}/", alert_body(n, price))

    def post(self, path: str, body: bytes) -> tuple[int, float]:
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = self.local.connection = http.client.HTTPConnection(
                "127.0.0.1", self.port, timeout=10
            )
        began = time.perf_counter()
        try:
            connection.request("POST", path, body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            self.local.connection = None
            status = 0
        return status, (time.perf_counter() - began) * 1000


def alert_body(n: int, price: float) -> bytes:
    action = "buy" if (n // len(BOTS)) % 2 == 0 else "close"
    return json.dumps(
        {
            "passphrase": PASSPHRASE,
            "ticker": "BINANCE:BTCUSDT",
            "action": action,
            "price": f"{price:.2f}",
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "id": f"bench-{n}",
        }
    ).encode()


def send_all(
    port: int, bots: list[tuple[int, str]], rate: float, seconds: float, first: int = 0
) -> list[tuple[int, float]]:
    """Alerts numbered from `first` (ids stay distinct across phases)."""
    sender = Sender(port)
    total = int(rate * seconds)
    rng = random.Random(1)
    price = 30000.0
    began = time.perf_counter()
    futures = []
    # Enough senders that a slow server shows as slow responses, not as a client backlog.
    with ThreadPoolExecutor(max_workers=128) as pool:
        for n in range(total):
            due = began + n / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            price *= 1 + rng.gauss(0, 0.0005)
            _bot_id, token = bots[n % len(bots)]
            # The body (and its time) is made by the sending thread, when it sends.
            futures.append(pool.submit(sender.send_alert, token, first + n, price))
    return [future.result() for future in futures]


def wait_executed(bot_ids: list[int], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    pending = WebhookEvent.objects.filter(bot_id__in=bot_ids, execution="pending")
    while time.monotonic() < deadline:
        left = pending.count()
        if left == 0:
            return 0
        time.sleep(0.5)
    return pending.count()


def quantiles(values: list[float]) -> str:
    if not values:
        return "n=0"
    ordered = sorted(values)
    p99 = percentile_99(ordered)
    return (
        f"n={len(ordered):5d}  p50 {statistics.median(ordered):7.1f} ms  "
        f"p99 {p99:7.1f} ms  max {ordered[-1]:7.1f} ms"
    )


def percentile_99(ordered: list[float]) -> float:
    return ordered[round(0.99 * (len(ordered) - 1))]


def ms(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() * 1000


# (label, from, to): the web process, then the queue and the worker up to risk, then the
# worker from risk to the exchange call (the intent's commit and nothing else).
STAGES = (
    ("received -> validated (web)", "received_at", "validated_at"),
    ("validated -> risk (worker)", "validated_at", "risk_at"),
    ("risk -> exchange call", "risk_at", "sent_at"),
)


def report(bot_ids: list[int], replies: list[tuple[int, float]], since: datetime) -> None:
    events = list(
        WebhookEvent.objects.filter(bot_id__in=bot_ids, received_at__gte=since).values(
            "status", "execution", "received_at", "validated_at", "risk_at", "sent_at"
        )
    )
    sent = [ms(e["received_at"], e["sent_at"]) for e in events if e["sent_at"]]
    risk = [ms(e["received_at"], e["risk_at"]) for e in events if e["risk_at"]]
    codes: dict[int, int] = {}
    for status, _ in replies:
        codes[status] = codes.get(status, 0) + 1
    outcomes: dict[str, int] = {}
    for e in events:
        key = f"{e['status']}/{e['execution'] or '-'}"
        outcomes[key] = outcomes.get(key, 0) + 1
    print(f"responses by HTTP status: {dict(sorted(codes.items()))}")
    print(f"events: {dict(sorted(outcomes.items()))}")
    print(f"received -> exchange call sent : {quantiles(sent)}")
    print(f"received -> risk decided       : {quantiles(risk)}")
    print(f"request sent -> response       : {quantiles([t for s, t in replies if s])}")
    print("stages of the alerts sent to the exchange:")
    for name, start, end in STAGES:
        stage = [ms(e[start], e[end]) for e in events if e["sent_at"] and e[start] and e[end]]
        print(f"  {name:28s} : {quantiles(stage)}")
    if sent:
        p99 = percentile_99(sorted(sent))
        verdict = "meets" if p99 < 50 else "misses"
        print(f"p99 to the exchange call {p99:.1f} ms {verdict} the 50 ms target")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=50.0, help="alerts per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to send")
    parser.add_argument("--port", type=int, default=int(os.environ.get("BENCH_PORT", 8765)))
    parser.add_argument("--no-start", action="store_true", help="use a running daphne + worker")
    # As the Procfile's orders worker (-c 4): the bench measures what ships.
    parser.add_argument("--worker-concurrency", type=int, default=4)
    parser.add_argument("--venue", choices=("testnet", "paper"), default="testnet")
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds sent first and not measured"
    )
    args = parser.parse_args()

    run = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    processes = []
    exchange_env: dict[str, str] = {}
    try:
        if args.venue == "testnet":
            fake, base_url = start_fake_exchange()
            processes.append(fake)
            settings.EXCHANGE_BASE_URL_OVERRIDE = base_url
            # The fake has no request limits: ccxt's client-side throttle (Binance's
            # weights, e.g. 200 ms after a balance call) would measure Binance, not us.
            exchange_env = {"EXCHANGE_BASE_URL_OVERRIDE": base_url, "EXCHANGE_CLIENT_THROTTLE": "0"}
            if args.no_start:
                print(f"start web and worker with EXCHANGE_BASE_URL_OVERRIDE={base_url}")
        bots = setup_bots(run, args.venue)
        bot_ids = [bot_id for bot_id, _ in bots]
        if not args.no_start:
            processes.append(
                start(
                    "web",
                    [
                        sys.executable,
                        "-m",
                        "daphne",
                        "-b",
                        "127.0.0.1",
                        "-p",
                        str(args.port),
                        "config.asgi:application",
                    ],
                    b"Listening on",
                    # Database connections come from the web process's pool (config/asgi.py).
                    env=exchange_env,
                )
            )
            processes.append(
                start(
                    "worker",
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "config",
                        "worker",
                        "-Q",
                        "orders",
                        "-c",
                        str(args.worker_concurrency),
                        "-l",
                        "info",
                    ],
                    b"ready.",
                    env=exchange_env,
                )
            )
        print(
            f"{len(bots)} signal bots on {args.venue} accounts, {args.rate:g} alerts/s "
            f"for {args.seconds:g} s to 127.0.0.1:{args.port}"
        )
        if args.warmup:
            # First requests pay for imports, pool growth and new HTTP connections: a
            # running platform has paid them already, so they are left out of the figures.
            send_all(args.port, bots, args.rate, args.warmup, first=10**6)
            wait_executed(bot_ids, timeout=60)
        since = datetime.now(UTC)
        replies = send_all(args.port, bots, args.rate, args.seconds)
        left = wait_executed(bot_ids, timeout=120)
        if left:
            print(f"warning: {left} alerts still pending after 120 s")
        report(bot_ids, replies, since)
    finally:
        for process in reversed(processes):
            process_stop(process)


if __name__ == "__main__":
    main()
