"""The demo's signal bot (`make run` -> seed_demo): a TradingView bot on a paper account
with a few alerts recorded in the past, at moments the demo's stored BTC/USDT candles
cover, so a new user can open "Backtest or replay these alerts" and get results at once
(alerts sent now have no stored candles to replay over until candles are downloaded).

The recorded alerts are accepted deliveries that were never executed (execution "Not
executed"); each is audited as seeded demo data. Idempotent: an existing bot is left as
it is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from django.db import transaction

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.bots.models import Bot
from apps.exchanges.models import ExchangeAccount
from apps.market.models import Candle
from apps.signals.models import WebhookEvent
from apps.signals.services import SignalBotInput, signal_bot_create

NAME = "Demo: TradingView alerts on BTC"
SYMBOL = "BTC/USDT"
# (alert time, action, size mode, size): around the SMA 10/30 crosses of April 2021 that
# the demo's strategy bot trades (apps/bots/demo.py).
ALERTS = (
    (datetime(2021, 4, 24, 0, 30, tzinfo=UTC), "buy", "", None),
    (datetime(2021, 4, 24, 13, 20, tzinfo=UTC), "close", "", None),
    (datetime(2021, 4, 26, 5, 10, tzinfo=UTC), "buy", "quote", Decimal(2000)),
    (datetime(2021, 4, 27, 9, 45, tzinfo=UTC), "sell", "contracts", Decimal("0.01")),
    (datetime(2021, 4, 28, 18, 0, tzinfo=UTC), "close", "", None),
)


def _candles_stored() -> bool:
    """Whether the demo's hourly candles cover the alerts (first and last alert's hours)."""
    hours = {moment.replace(minute=0) for moment in (ALERTS[0][0], ALERTS[-1][0])}
    stored = Candle.objects.filter(
        series__exchange="binance", series__symbol=SYMBOL, series__timeframe="1h"
    )
    return stored.filter(open_time__in=hours).count() == len(hours)


@transaction.atomic
def demo_signal_bot_seed(*, user: User) -> list[str]:
    """Create the demo signal bot with its recorded alerts once; return what was done."""
    account = ExchangeAccount.objects.filter(owner=user, mode=ExchangeAccount.Mode.PAPER).first()
    if account is None or Bot.objects.filter(owner=user, name=NAME).exists():
        return []
    if not _candles_stored():
        return []  # load_demo_candles has not run (make run always runs it first)
    bot, _secrets = signal_bot_create(
        owner=user,
        data=SignalBotInput(
            name=NAME, account_id=account.pk, symbols=[SYMBOL], risk_profile="balanced"
        ),
    )
    for number, (moment, action, size_mode, size) in enumerate(ALERTS, start=1):
        event = WebhookEvent.objects.create(
            bot=bot,
            key=f"demo-{bot.pk}-{number}",
            status=WebhookEvent.Status.ACCEPTED,
            ticker="BINANCE:BTCUSDT",
            symbol=SYMBOL,
            action=action,
            size_mode=size_mode,
            size=size,
            alert_time=moment,
            received_at=moment,
            validated_at=moment,
        )
        audit_record(
            event_type="signals.webhook.seeded",
            actor=None,
            actor_label="demo",
            owner=user,
            target=event,
            data={"action": action, "symbol": SYMBOL, "alert_time": moment.isoformat()},
        )
    return [f"the signal bot “{bot.name}” with {len(ALERTS)} recorded alerts"]
