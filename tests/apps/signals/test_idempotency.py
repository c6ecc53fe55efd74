"""TV-2: N distinct alerts x M deliveries each, from 50 concurrent senders over HTTP, give
exactly N WebhookEvents and exactly N orders on the (fake) exchange, for a signal bot on a
testnet account; every duplicate is answered 200, and every execution is delivered twice.

The default is 20 x 20 (400 deliveries) to keep CI short; the full target runs with
SIGNALS_TV2_FULL=1 (100 x 100 = 10,000 deliveries).
"""

import json
import os
import random
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from apps.bots.models import BotOrder
from apps.signals.models import WebhookEvent
from tests.apps.signals.conftest import (
    PASSPHRASE,
    hook_path,
    make_testnet_signal_bot,
    run_queued,
)

FULL = os.environ.get("SIGNALS_TV2_FULL") == "1"
DISTINCT, COPIES = (100, 100) if FULL else (20, 20)
SENDERS = 50


def deliver(url: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_tv2_duplicates_from_concurrent_senders_give_one_event_and_one_order_each(
    live_server, alice, testnet_account, fake_exchange, queued, settings
):
    settings.SIGNALS_RATE_LIMIT_PER_MINUTE = 1_000_000
    bot, secrets = make_testnet_signal_bot(
        alice,
        testnet_account,
        risk_profile="aggressive",
        risk_overrides={"max_trades_per_day": 200},
        size_mode="quote",
        size_value=Decimal(10),
    )
    # Duplicates are byte-identical, so they all carry the first send's time; the full run
    # lasts minutes, longer than the default 60 s replay window.
    bot.signal_source.max_age_seconds = 3600
    bot.signal_source.save()
    url = live_server.url + hook_path(secrets.token)
    now = datetime.now(UTC).isoformat()
    alerts = [
        json.dumps(
            {
                "passphrase": PASSPHRASE,
                "ticker": "BINANCE:BTCUSDT",
                "action": "buy",
                "price": str(30000 + n),
                "time": now,
            }
        ).encode()
        for n in range(DISTINCT)
    ]
    deliveries = [body for body in alerts for _ in range(COPIES)]
    random.Random(7).shuffle(deliveries)
    with ThreadPoolExecutor(SENDERS) as pool:
        replies = list(pool.map(lambda body: deliver(url, body), deliveries))

    assert {status for status, _ in replies} == {200}
    accepted = [reply for _, reply in replies if reply.get("accepted")]
    duplicates = [reply for _, reply in replies if reply.get("duplicate")]
    assert len(accepted) == DISTINCT and len(duplicates) == DISTINCT * (COPIES - 1)
    assert WebhookEvent.objects.filter(bot=bot).count() == DISTINCT
    assert sum(WebhookEvent.objects.values_list("duplicates", flat=True)) == DISTINCT * (COPIES - 1)

    # Every queued execution, each delivered twice (a redelivery after a worker loss).
    assert sorted(queued) == sorted(WebhookEvent.objects.values_list("pk", flat=True))
    twice = queued * 2
    random.Random(8).shuffle(twice)
    outcomes = run_queued(twice)
    assert outcomes.count("sent") == DISTINCT and outcomes.count("skipped") == DISTINCT
    orders = BotOrder.objects.filter(bot=bot)
    assert orders.count() == DISTINCT
    assert set(orders.values_list("status", flat=True)) == {"FILLED"}
    on_exchange = fake_exchange.book.orders
    assert len(on_exchange) == DISTINCT
    assert {o.client_id for o in on_exchange} == set(
        orders.values_list("client_order_id", flat=True)
    )
    assert len(fake_exchange.create_requests()) == DISTINCT
