"""Executing an accepted alert (the Celery task's body): the bot's risk profile and
whitelist (engine risk, as for every bot), then the bot's broker through
`apps.bots.execution`, the same path a strategy bot's tick takes.

Paper accounts: the paper broker fills market orders on a candle, and an alert is not a
candle. We feed it a one-price candle (open = high = low = close) at the alert's price
({{close}} in the message, else the latest stored candle close) opening now, so a market
order fills at once at that price (plus the account's slippage and fees). Limitation: the
fill price is the alert's price, not the market's price at execution time, and that
candle also triggers any resting order of the account on that symbol.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal

from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.bots.engine_state import (
    bot_risk_limits,
    kill_switches,
    risk_state_load,
    run_risk_state,
    run_risk_state_save,
)
from apps.bots.execution import (
    account_broker,
    account_snapshot,
    last_fill_price,
    orders_place,
    paper_fill_now,
    paper_instrument,
)
from apps.bots.models import AccountRisk, Bot, BotLog, BotRun
from apps.common.logging import redact
from apps.engine.clock import FixedClock
from apps.engine.risk import (
    RiskConfigError,
    RiskState,
    risk_check,
    risk_observe,
)
from apps.engine.strategies.base import OrderIntent
from apps.engine.types import split_symbol
from apps.market.models import Candle as StoredCandle
from apps.signals.models import WebhookEvent

logger = logging.getLogger(__name__)
Execution = WebhookEvent.Execution


def signal_event_execute(*, event_id: int) -> str:
    """Run one accepted alert once; a redelivered task finds it done and returns.

    An unexpected error rolls the attempt back and marks the alert FAILED, so it never
    stays pending; an unreachable database is left to the task's redelivery."""
    try:
        return _execute_pending(event_id, _execute)
    except (OperationalError, InterfaceError):
        raise
    except Exception as exc:
        logger.exception("signal event %s failed", event_id)
        error = redact(f"{type(exc).__name__}: {exc}")

        def failed(event: WebhookEvent, bot: Bot) -> None:
            _finish(event, bot, None, Execution.FAILED, error)

        return _execute_pending(event_id, failed)


def _execute_pending(event_id: int, act: Callable[[WebhookEvent, Bot], None]) -> str:
    with transaction.atomic():
        event = (
            WebhookEvent.objects.select_for_update(of=("self",))
            .select_related("bot", "bot__owner", "bot__account")
            .filter(pk=event_id)
            .first()
        )
        if event is None or event.execution != Execution.PENDING or event.bot is None:
            return "skipped"
        act(event, event.bot)
        event.save()
        return str(event.execution)


def _execute(event: WebhookEvent, bot: Bot) -> None:
    run = bot.runs.filter(status=BotRun.Status.RUNNING, paused_at__isnull=True).first()
    if run is None:
        _finish(event, bot, None, Execution.REFUSED, "the bot is not running")
        return
    try:
        limits = bot_risk_limits(bot)
    except RiskConfigError as error:
        _finish(event, bot, run, Execution.FAILED, f"risk settings: {error}")
        return
    now = timezone.now()
    clock = FixedClock(now)
    quote = split_symbol(event.symbol)[1]
    with account_broker(account=bot.account, clock=clock, quote=quote) as broker:
        price = event.price or _latest_close(bot, event.symbol)
        if price is None:
            _finish(event, bot, run, Execution.FAILED, f"no price for {event.symbol}")
            return
        marks = _marks(bot, broker.balances(), event.symbol, price)
        account = account_snapshot(broker=broker, marks=marks)
        state = risk_observe(
            run_risk_state(run),
            limits,
            equity=account.equity,
            now=now,
        )
        result = risk_check(
            [_intent(event, account.equity)],
            instrument=paper_instrument(event.symbol),
            limits=limits,
            state=state,
            account=account,
            kill=kill_switches(run),
            account_state=_account_state(bot),
            id_prefix=f"sig{event.pk}",
        )
        event.risk_at = timezone.now()
        run_risk_state_save(run, result.state)
        run.save(update_fields=["risk_state", "updated_at"])
        if result.rejections:
            reason = "; ".join(r.message for r in result.rejections)
            _finish(event, bot, run, Execution.REFUSED, reason, source=BotLog.Source.RISK)
            return
        orders = orders_place(bot=bot, run=run, broker=broker, requests=list(result.requests))
        event.sent_at = timezone.now()
        event.order = orders[0] if orders else None
        recorded = paper_fill_now(
            account=bot.account, broker=broker, symbol=event.symbol, price=price, at=now
        )
        if recorded:
            event.order = recorded[0].order  # the row fills_record brought up to date
    event.latency_ms = event.stage_ms("received_at", "sent_at")
    if event.order is not None and event.order.status == "REJECTED":
        _finish(event, bot, run, Execution.FAILED, event.order.message[:300] or "rejected")
        return
    _finish(event, bot, run, Execution.SENT, "")


def _intent(event: WebhookEvent, equity: Decimal) -> OrderIntent:
    side = "buy" if event.action == "buy" else "sell"
    tag = f"signal-{event.pk}"
    if event.action == "close" or event.size is None:
        return OrderIntent(side, tag=tag)
    if event.size_mode == "contracts":
        return OrderIntent(side, size=float(event.size), tag=tag)
    amount = event.size if event.size_mode == "quote" else equity * event.size / 100
    return OrderIntent(side, amount=float(amount), tag=tag)


def _marks(bot: Bot, balances: dict, symbol: str, price: Decimal) -> dict[str, Decimal]:
    """A mark for the alert's symbol and for every other asset the account holds."""
    quote = split_symbol(symbol)[1]
    marks = {symbol: price}
    for asset, balance in balances.items():
        held = f"{asset}/{quote}"
        if asset == quote or not balance.total or held in marks:
            continue
        marks[held] = (
            _latest_close(bot, held)
            or last_fill_price(account=bot.account, symbol=held)
            or Decimal(0)
        )
    return marks


def _latest_close(bot: Bot, symbol: str) -> Decimal | None:
    exchange = bot.market_exchange or bot.account.exchange
    close = (
        StoredCandle.objects.filter(series__exchange=exchange, series__symbol=symbol)
        .order_by("-open_time")
        .values_list("close", flat=True)
        .first()
    )
    return None if close is None else Decimal(str(close))


def _account_state(bot: Bot) -> RiskState | None:
    row = AccountRisk.objects.filter(account=bot.account).first()
    return None if row is None or not row.state else risk_state_load(row.state)


def _finish(
    event: WebhookEvent,
    bot: Bot,
    run: BotRun | None,
    execution: str,
    reason: str,
    source: str = BotLog.Source.SYSTEM,
) -> None:
    event.execution, event.execution_reason = execution, reason[:300]
    if execution != Execution.SENT:
        BotLog.objects.create(
            bot=bot,
            run=run,
            level=BotLog.Level.WARNING,
            source=source,
            message=f"alert {event.pk} ({event.action} {event.symbol}) {execution}: {reason}",
        )
    audit_record(
        event_type=f"signals.alert.{execution}",
        actor=None,
        actor_label="signals",
        owner=bot.owner,
        target=event,
        data={"reason": event.execution_reason, "order": event.order_id},
    )
