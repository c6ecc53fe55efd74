"""Executing an accepted alert (the Celery task's body): the bot's risk profile and
whitelist (engine risk, as for every bot), then the bot's broker through
`apps.bots.execution`, the same path a strategy bot's tick takes.

Paper accounts: the paper broker fills market orders on a candle, and an alert is not a
candle. We feed it a one-price candle (open = high = low = close) at the alert's price
({{close}} in the message, else the latest stored candle close) opening now, so a market
order fills at once at that price (plus the account's slippage and fees). Limitation: the
fill price is the alert's price, not the market's price at execution time, and that
candle also triggers any resting order of the account on that symbol.

Testnet accounts (apps.bots.exchange_orders): the order row is committed PENDING_SUBMIT
with the event (the first transaction), sent once outside any transaction, and its answer
and fills recorded in a second one. A task redelivered between the two finds the intent
and never sends it again: it looks the client order id up, and the reconcile resolves
what it cannot see yet.

Risk and sizing: the bot's own view of the account (its capital limit, without the
holdings it did not assume), the account-wide stage observed and saved as a tick does,
and the alert's size by `signal_intent`, the rule signal backtests use.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from apps.audit.services import audit_record_many
from apps.bots.engine_state import (
    bot_account_view,
    bot_risk_limits,
    kill_switches,
    run_baseline,
    run_risk_state,
    run_risk_state_save,
)
from apps.bots.exchange_orders import (
    SendResult,
    exchange_broker,
    exchange_order_fills,
    exchange_order_record,
    exchange_order_send,
    exchange_orders_intend,
)
from apps.bots.execution import (
    account_broker,
    account_risk_observe,
    last_fill_price,
    orders_place,
    paper_fill_now,
    paper_instrument,
)
from apps.bots.models import Bot, BotLog, BotOrder, BotRun
from apps.common.errors import ApplicationError
from apps.common.logging import redact
from apps.engine.brokers.ccxt_live import BrokerError
from apps.engine.brokers.ccxt_orders import CcxtBroker
from apps.engine.brokers.paper import PaperBroker
from apps.engine.clock import FixedClock
from apps.engine.risk import (
    AccountSnapshot,
    RiskConfigError,
    RiskLimits,
    risk_check,
    risk_observe,
)
from apps.engine.strategies.recorded import SIZE_MODES, signal_intent
from apps.engine.types import Balance, OrderRequest, split_symbol
from apps.exchanges.models import ExchangeAccount
from apps.market.models import Candle as StoredCandle
from apps.signals.models import WebhookEvent

logger = logging.getLogger(__name__)
Execution = WebhookEvent.Execution
# The columns an execution writes: an UPDATE of these only, not of the whole delivery.
_EXECUTED = ("order", "risk_at", "sent_at", "latency_ms", "execution", "execution_reason")
# Audit events collected as `audit_record` arguments, appended at once at the end.
_Audits = list[dict[str, Any]]


def signal_event_execute(*, event_id: int) -> str:
    """Run one accepted alert once; a redelivered task finds it done and returns.

    An unexpected error rolls the attempt back and marks the alert FAILED, so it never
    stays pending; an unreachable database is left to the task's redelivery."""
    try:
        return _execute(event_id)
    except (OperationalError, InterfaceError):
        raise
    except Exception as exc:
        logger.exception("signal event %s failed", event_id)
        error = redact(f"{type(exc).__name__}: {exc}")
        with transaction.atomic():
            event = _locked(event_id)
            if event is None or event.bot is None:
                return "skipped"
            _finish(event, event.bot, None, Execution.FAILED, error)
            return str(event.execution)


# A market load while warming waits this long at most (an unreachable exchange must not
# hold a new worker child past Celery's 4 s start limit).
WARM_MARKETS_TIMEOUT_MS = 1000


def signal_brokers_warm(*, limit: int = 20, budget_s: float = 1.5) -> int:
    """Build, in this worker process, the brokers of the exchange accounts that running
    signal bots trade on, so an alert pays for no client build or market load; returns
    how many. Bounded (`limit`, `budget_s`): Celery gives a new child 4 s to start. An
    account not warmed is built on its first alert."""
    deadline = time.monotonic() + budget_s
    accounts = (
        ExchangeAccount.objects.exclude(mode=ExchangeAccount.Mode.PAPER)
        .filter(
            bots__signal_source__isnull=False,
            bots__archived_at__isnull=True,
            bots__runs__status=BotRun.Status.RUNNING,
        )
        .distinct()
        .order_by("pk")[:limit]
    )
    warmed = 0
    for account in accounts:
        if time.monotonic() > deadline:
            break
        try:
            exchange_broker(account=account, markets_timeout_ms=WARM_MARKETS_TIMEOUT_MS)
        except (ApplicationError, BrokerError) as error:
            logger.warning("broker of account %s not warmed: %s", account.pk, type(error).__name__)
            continue
        warmed += 1
    return warmed


@dataclass(frozen=True)
class _Intent:
    """An order committed PENDING_SUBMIT, to be sent once after the commit."""

    row: BotOrder
    broker: CcxtBroker
    request: OrderRequest


# Each join costs the ORM a millisecond or so of CPU per alert: the owner is wanted by id
# only, and the order's account is the bot's (`_order_account`).
_WITH_BOT = ("bot", "bot__account", "order")


def _locked(event_id: int, related: tuple[str, ...] = _WITH_BOT) -> WebhookEvent | None:
    """The event, locked, while it is still to be executed; `related` as select_related
    takes it (the second transaction has the bot already)."""
    locked = WebhookEvent.objects.select_for_update(of=("self",)).select_related(*related)
    # By primary key: no ORDER BY or LIMIT for `first()` to compile.
    event = next(iter(locked.filter(pk=event_id).order_by()), None)
    if event is None or event.execution != Execution.PENDING or event.bot_id is None:
        return None
    return event


def _execute(event_id: int) -> str:
    with transaction.atomic():
        event = _locked(event_id)
        if event is None:
            return "skipped"
        bot = event.bot
        assert bot is not None
        intent = None
        if event.order is None:
            audits: _Audits = []
            intent = _decide(event, bot, audits)
            if intent is None:  # finished: paper (traded), refused or failed
                return str(event.execution)
            event.order = intent.row
            event.save(update_fields=_EXECUTED)
            audit_record_many(events=audits)
    if intent is not None:
        event.sent_at = timezone.now()
        sent = exchange_order_send(broker=intent.broker, request=intent.request)
        broker = intent.broker
    else:
        # An earlier attempt committed the intent and may have sent it: look, never send.
        assert event.order is not None
        broker = exchange_broker(account=bot.account)
        broker.remember(event.order.client_order_id, event.order.symbol)
        sent = SendResult(broker.get_order(event.order.client_order_id))
    fills = exchange_order_fills(broker=broker, sent=sent)
    with transaction.atomic():
        locked = _locked(event_id, related=("order",))
        if locked is None or locked.order is None:
            return "skipped"
        _order_account(locked.order, bot)
        locked.sent_at = event.sent_at or locked.sent_at
        audits = []
        row = exchange_order_record(
            row=locked.order, sent=sent, fills=fills, audit=lambda **e: audits.append(e)
        )
        _done(locked, bot, row, audits)
        return str(locked.execution)


def _order_account(order: BotOrder, bot: Bot) -> None:
    """The order's account is the bot's (it was the bot's when the intent was written):
    taken from the bot instead of a join; another account (the bot's was changed since)
    is loaded when it is read."""
    if order.account_id == bot.account_id:
        order.account = bot.account


def _decide(event: WebhookEvent, bot: Bot, audits: _Audits) -> _Intent | None:
    """Risk, then the paper trade or the exchange intent; None when nothing is left to
    send (the event is finished: traded on paper, refused or failed). The intent's audit
    event goes to `audits`, for the caller to append after its last write."""
    # One active run at most per bot (bot_run_one_active_per_bot): no ORDER BY or LIMIT
    # for the ORM to compile. Locked: two alerts of one bot executed at once would both
    # read its risk state (trades today, stage) and the second would write over the first.
    running = (
        bot.runs.select_for_update()
        .filter(status=BotRun.Status.RUNNING, paused_at__isnull=True)
        .order_by()
    )
    run = next(iter(running), None)
    if run is None:
        _finish(event, bot, None, Execution.REFUSED, "the bot is not running")
        return None
    try:
        limits = bot_risk_limits(bot)
    except RiskConfigError as error:
        _finish(event, bot, run, Execution.FAILED, f"risk settings: {error}")
        return None
    now = timezone.now()
    price = event.price or _latest_close(bot, event.symbol)
    if price is None:
        _finish(event, bot, run, Execution.FAILED, f"no price for {event.symbol}")
        return None
    if bot.account.is_paper:
        quote = split_symbol(event.symbol)[1]
        with account_broker(account=bot.account, clock=FixedClock(now), quote=quote) as paper:
            requests = _risk(event, bot, run, limits, paper.balances(), price, now)
            if requests is not None:
                _paper_trade(event, bot, run, paper, requests, price, now)
        return None
    try:
        broker = exchange_broker(account=bot.account)
        balances = broker.balances()
    except (ApplicationError, BrokerError) as error:
        _finish(event, bot, run, Execution.FAILED, str(error))
        return None
    requests = _risk(event, bot, run, limits, balances, price, now)
    if not requests:
        return None
    rows = exchange_orders_intend(
        bot=bot, run=run, requests=requests[:1], audit=lambda **e: audits.append(e)
    )
    if not rows:  # the id is taken: never send it twice (the event and its row commit together)
        _finish(event, bot, run, Execution.FAILED, f"order {requests[0].client_order_id} exists")
        return None
    return _Intent(rows[0], broker, requests[0])


def _risk(
    event: WebhookEvent,
    bot: Bot,
    run: BotRun,
    limits: RiskLimits,
    balances: Mapping[str, Balance],
    price: Decimal,
    now: datetime,
) -> tuple[OrderRequest, ...] | None:
    """Engine risk on the bot's view of the account: the requests, or None when the alert
    was refused (and finished)."""
    account = AccountSnapshot(
        split_symbol(event.symbol)[1], dict(balances), _marks(bot, balances, event.symbol, price)
    )
    view = bot_account_view(
        account,
        symbols=list(bot.symbols),
        baseline=run_baseline(run),
        capital_limit=bot.capital_limit,
    )
    state = risk_observe(run_risk_state(run), limits, equity=view.equity, now=now)
    account_state = account_risk_observe(
        account_id=bot.account_id, limits=limits, equity=account.equity, now=now
    )
    intent = signal_intent(
        event.action,
        event.size_mode if event.size_mode in SIZE_MODES else "",
        None if event.size is None else float(event.size),
        equity=float(view.equity),
        # A sell with nothing held goes on to risk, which refuses it (no_position) and
        # says so in the bot log; a backtest just skips it.
        flat=False,
        tag=f"signal-{event.pk}",
    )
    assert intent is not None  # only a flat sell has no intent
    result = risk_check(
        [intent],
        instrument=paper_instrument(event.symbol),
        limits=limits,
        state=state,
        account=view,
        kill=kill_switches(run),
        account_state=account_state,
        id_prefix=f"sig{event.pk}",
    )
    event.risk_at = timezone.now()
    run_risk_state_save(run, result.state)
    run.save(update_fields=["risk_state", "updated_at"])
    if result.rejections:
        reason = "; ".join(r.message for r in result.rejections)
        _finish(event, bot, run, Execution.REFUSED, reason, source=BotLog.Source.RISK)
        return None
    return result.requests


def _paper_trade(
    event: WebhookEvent,
    bot: Bot,
    run: BotRun,
    broker: PaperBroker,
    requests: tuple[OrderRequest, ...],
    price: Decimal,
    now: datetime,
) -> None:
    orders = orders_place(bot=bot, run=run, broker=broker, requests=list(requests))
    event.sent_at = timezone.now()
    event.order = orders[0] if orders else None
    recorded = paper_fill_now(
        account=bot.account, broker=broker, symbol=event.symbol, price=price, at=now
    )
    if recorded:
        event.order = recorded[0].order  # the row fills_record brought up to date
    _done(event, bot, event.order)


def _done(
    event: WebhookEvent, bot: Bot, order: BotOrder | None, audits: Sequence[Mapping] = ()
) -> None:
    event.latency_ms = event.stage_ms("received_at", "sent_at")
    if order is not None and order.status == BotOrder.Status.REJECTED:
        reason = order.message[:300] or "rejected"
        _finish(event, bot, None, Execution.FAILED, reason, audits=audits)
    elif order is not None and order.status in (
        BotOrder.Status.PENDING_SUBMIT,
        BotOrder.Status.UNKNOWN,
    ):
        reason = "the exchange has not confirmed the order yet; the reconcile looks it up"
        _finish(event, bot, None, Execution.SENT, reason, audits=audits)
    else:
        _finish(event, bot, None, Execution.SENT, "", audits=audits)


def _marks(
    bot: Bot, balances: Mapping[str, Balance], symbol: str, price: Decimal
) -> dict[str, Decimal]:
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


def _finish(
    event: WebhookEvent,
    bot: Bot,
    run: BotRun | None,
    execution: str,
    reason: str,
    source: str = BotLog.Source.SYSTEM,
    audits: Sequence[Mapping] = (),
) -> None:
    """The alert's outcome, saved, logged when it did not trade, and audited after
    `audits` (the transaction's other events) in one append; the audit goes last in the
    transaction (its chain lock is held until the commit)."""
    event.execution, event.execution_reason = execution, reason[:300]
    event.save(update_fields=_EXECUTED)
    if execution != Execution.SENT:
        BotLog.objects.create(
            bot=bot,
            run=run,
            level=BotLog.Level.WARNING,
            source=source,
            message=f"alert {event.pk} ({event.action} {event.symbol}) {execution}: {reason}",
        )
    alert = {
        "event_type": f"signals.alert.{execution}",
        "actor": None,
        "actor_label": "signals",
        "owner_id": bot.owner_id,
        "target": event,
        "data": {"reason": event.execution_reason, "order": event.order_id},
    }
    audit_record_many(events=[*audits, alert])
