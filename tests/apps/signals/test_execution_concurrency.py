"""Two alerts of one bot executed at the same time by two worker children: the run's risk
state is read and written by one at a time, so a limit of one trade a day lets one through."""

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from apps.signals import execute
from apps.signals.models import WebhookEvent
from tests.apps.signals.conftest import make_signal_bot


def accepted(bot, number: int) -> WebhookEvent:
    return WebhookEvent.objects.create(
        bot=bot,
        key=f"{bot.pk}-concurrent-{number}",
        status=WebhookEvent.Status.ACCEPTED,
        execution=WebhookEvent.Execution.PENDING,
        action="buy",
        symbol="BTC/USDT",
        size_mode="quote",
        size=Decimal(100),
        price=Decimal(30000),
        received_at=timezone.now(),
    )


@pytest.mark.django_db(transaction=True)
def test_two_alerts_at_once_respect_one_trade_a_day(alice, monkeypatch):
    bot, _secrets = make_signal_bot(alice, risk_profile="aggressive", risk_overrides={})
    bot.max_trades_per_day = 1
    bot.save(update_fields=["max_trades_per_day"])
    first, second = accepted(bot, 1), accepted(bot, 2)

    second_started = threading.Event()
    trade = execute._paper_trade

    def slow_first_trade(event, *args, **kwargs):
        # The first alert holds its transaction open until the second one is under way.
        if event.pk == first.pk:
            second_started.wait(10)
            time.sleep(0.5)
        return trade(event, *args, **kwargs)

    monkeypatch.setattr(execute, "_paper_trade", slow_first_trade)
    outcomes: dict[int, str] = {}

    def run(event_id: int) -> None:
        try:
            if event_id == second.pk:
                second_started.set()
            outcomes[event_id] = execute.signal_event_execute(event_id=event_id)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(first.pk,))]
    threads[0].start()
    time.sleep(0.3)  # the first alert is inside its transaction
    threads.append(threading.Thread(target=run, args=(second.pk,)))
    threads[1].start()
    for thread in threads:
        thread.join(30)

    assert outcomes == {first.pk: "sent", second.pk: "refused"}
    second.refresh_from_db()
    assert "trades" in second.execution_reason
