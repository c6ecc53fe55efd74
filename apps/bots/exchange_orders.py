"""Orders on an exchange API (testnet accounts; live once it is enabled) through `CcxtBroker`.

Exactly once (reliability.md §3, ORD-1): unlike a paper book, an exchange cannot take part
in our transaction, so each order is

1. written as a PENDING_SUBMIT row with its client order id, plus its audit event, and
   COMMITTED (`exchange_orders_intend`);
2. sent once (`exchange_order_send`, outside any transaction); the broker never re-sends
   an id it knows, and resolves a timeout by looking the id up;
3. its fills asked for, still outside any transaction (`exchange_order_fills`), then the
   row brought up to date with the answer and the fills stored by trade id, audited
   (`exchange_order_record`); an order the exchange could not show in time stays UNKNOWN.

`exchange_orders_reconcile` (beat and worker start, with the paper reconcile) looks every
PENDING_SUBMIT/UNKNOWN row up by client order id: found, it is adopted; still absent after
`EXCHANGE_ORDER_GRACE_SECONDS`, it was never placed and becomes REJECTED.

Keys: the account's decrypted keys go to ccxt only (apps.exchanges.clients); they are never
logged, and our errors carry ccxt's class names only (ccxt_live.broker_error).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.bots.execution import (
    fills_save,
    order_audit_record,
    order_row,
    order_status,
    requests_unwritten,
)
from apps.bots.models import Bot, BotOrder, BotRun
from apps.common.errors import ApplicationError
from apps.engine.brokers import ccxt_live
from apps.engine.brokers.base import BrokerRejection
from apps.engine.brokers.ccxt_live import BrokerError
from apps.engine.brokers.ccxt_orders import CcxtBroker, LookupPolicy
from apps.engine.types import Fill, Order, OrderRequest
from apps.exchanges.clients import client_spec
from apps.exchanges.models import ExchangeAccount

logger = logging.getLogger(__name__)


class _WallClock:
    def now(self) -> datetime:
        return timezone.now()


@dataclass
class _Cached:
    version: tuple[Any, ...]
    broker: CcxtBroker


# One broker per account and thread: a Celery worker process runs one task at a time, and
# `CcxtBroker` is not thread-safe. Building a client and loading its markets costs a round
# trip, so an alert reuses the broker of the alert before it.
_local = threading.local()
# Markets are public and the same for every key of one venue: a process loads them once
# per (exchange, mode, base URL) and each new client shares them (read only), so an
# account's first order in a process makes no extra round trip. Reloaded after an hour.
MARKETS_MAX_AGE_S = 3600.0
_markets: dict[tuple[str, str, str], tuple[float, Any]] = {}
_markets_lock = threading.Lock()


def exchange_trading_check(account: ExchangeAccount) -> None:
    """Refuse an account that cannot trade through an exchange API (yet)."""
    if account.is_paper:
        raise ApplicationError("a paper account trades on its paper book", field="account")
    if account.mode == ExchangeAccount.Mode.LIVE and not settings.BOTS_LIVE_TRADING:
        raise ApplicationError(
            "live trading is not enabled yet: use a testnet account", field="account"
        )


def exchange_broker(
    *, account: ExchangeAccount, markets_timeout_ms: int | None = None
) -> CcxtBroker:
    """The account's broker, kept per thread and rebuilt when its keys or mode change.
    `markets_timeout_ms` bounds a market load made here (a worker's start has 4 s)."""
    exchange_trading_check(account)
    cache: dict[int, _Cached] = getattr(_local, "brokers", None) or {}
    _local.brokers = cache
    version = (
        account.exchange,
        account.mode,
        account.key_fingerprint,
        account.updated_at,
        settings.EXCHANGE_BASE_URL_OVERRIDE,
    )
    cached = cache.get(account.pk)
    if cached is not None and cached.version == version:
        return cached.broker
    if cached is not None:
        cached.broker.close()
    spec = client_spec(
        exchange=account.exchange,
        mode=account.mode,
        api_key=account.api_key,
        api_secret=account.api_secret,
        passphrase=account.passphrase,
    )
    # A signal runs under a 20 s task limit: a create whose answer was lost is looked up
    # briefly here, and the reconcile takes over after that.
    lookup = LookupPolicy(window_s=float(settings.EXCHANGE_ORDER_LOOKUP_SECONDS))
    client = ccxt_live.client_build(spec)
    venue = (account.exchange, account.mode, settings.EXCHANGE_BASE_URL_OVERRIDE)
    _markets_share(client, venue, timeout_ms=markets_timeout_ms)
    broker = CcxtBroker(client, clock=_WallClock(), lookup=lookup)
    cache[account.pk] = _Cached(version, broker)
    return broker


def _markets_share(client: Any, venue: tuple[str, str, str], timeout_ms: int | None) -> None:
    """Give `client` its venue's markets, loading them through it when this process has
    none or old ones. A failed load is left to the broker, which loads (and reports) on
    first use."""
    with _markets_lock:
        known = _markets.get(venue)
    if known is not None and time.monotonic() - known[0] < MARKETS_MAX_AGE_S:
        client.set_markets_from_exchange(known[1])
        return
    timeout = client.timeout
    client.timeout = min(timeout, timeout_ms or timeout)
    try:
        ccxt_live.exchange_call(client.load_markets)
    except BrokerError:
        return
    finally:
        client.timeout = timeout
    with _markets_lock:
        _markets[venue] = (time.monotonic(), client)


def exchange_brokers_forget() -> None:
    """Drop this thread's brokers and the process's markets (tests that restart the fake
    exchange)."""
    for cached in (getattr(_local, "brokers", None) or {}).values():
        cached.broker.close()
    _local.brokers = {}
    with _markets_lock:
        _markets.clear()


def exchange_orders_intend(
    *,
    bot: Bot,
    run: BotRun | None,
    requests: Sequence[OrderRequest],
    audit: Callable[..., object] = audit_record,
) -> list[BotOrder]:
    """Write each request as a PENDING_SUBMIT row plus its audit event, in the caller's
    transaction, which must commit before anything is sent. An id written before is
    skipped (a redelivered task). `audit` takes each event's `audit_record` arguments: a
    caller that collects them writes them last, with its own, in one append."""
    rows = []
    for request in requests_unwritten(requests):
        row = order_row(bot, run, request, None)
        order_audit_record(row, event_type="bot.order.intended", owner_id=bot.owner_id, audit=audit)
        rows.append(row)
    return rows


@dataclass(frozen=True)
class SendResult:
    """What one send told us: the exchange's order, or why it refused."""

    order: Order | None
    refusal: str = ""
    field: str | None = None


def exchange_order_send(*, broker: CcxtBroker, request: OrderRequest) -> SendResult:
    """Send one committed intent, outside any transaction (ORD-1: intent first)."""
    if transaction.get_connection().in_atomic_block:
        raise RuntimeError("an exchange order is sent after its intent has committed")
    try:
        return SendResult(broker.place_order(request))
    except BrokerRejection as exc:
        return SendResult(None, str(exc), exc.field)
    except BrokerError as exc:
        # The key was refused, or the look-up could not even ask: the row stays
        # PENDING_SUBMIT for the reconcile, which never re-sends its id.
        logger.warning("order %s: %s", request.client_order_id, exc)
        return SendResult(None)


def exchange_order_fills(*, broker: CcxtBroker, sent: SendResult) -> tuple[Fill, ...]:
    """The executions of a sent order, asked outside any transaction (two exchange calls
    that must not hold row or audit locks); none when it did not fill or cannot be seen
    (the reconcile fetches them later)."""
    if sent.order is None or sent.order.filled_qty <= 0:
        return ()
    try:
        return broker.fills(sent.order.client_order_id)
    except BrokerError as exc:
        logger.warning("fills of order %s: %s", sent.order.client_order_id, exc)
        return ()


def exchange_order_record(
    *,
    row: BotOrder,
    sent: SendResult,
    fills: Sequence[Fill] = (),
    audit: Callable[..., object] = audit_record,
) -> BotOrder:
    """The exchange's answer onto the row and its fills by trade id, audited; in the
    caller's transaction, with the audit event last (its chain lock lasts until the
    commit). `audit` as in `exchange_orders_intend`."""
    if sent.refusal:
        row.status, row.message = BotOrder.Status.REJECTED, sent.refusal[:2000]
    elif sent.order is not None:
        _sync(row, sent.order)
    else:
        return row
    row.save(
        update_fields=[
            "status", "qty", "filled_qty", "average_price", "message", "exchange_order_id",
            "updated_at",
        ]
    )  # fmt: skip
    if fills:
        fills_save(account=row.account, orders={row.client_order_id: row}, fills=fills)
    order_audit_record(
        row, event_type="bot.order.placed", owner_id=row.account.owner_id, audit=audit
    )
    return row


def _sync(row: BotOrder, order: Order) -> None:
    row.status = order_status(order)
    row.qty = order.qty if order.qty is not None else row.qty
    row.filled_qty = order.filled_qty
    row.average_price = order.average_price
    row.message = order.message
    row.exchange_order_id = row.exchange_order_id or row.client_order_id


def exchange_orders_reconcile(*, older_than: timedelta = timedelta(seconds=30)) -> int:
    """Resolve PENDING_SUBMIT/UNKNOWN orders on exchange accounts by client order id;
    returns how many changed. Never sends anything."""
    now = timezone.now()
    grace = timedelta(seconds=float(settings.EXCHANGE_ORDER_GRACE_SECONDS))
    stuck = list(
        BotOrder.objects.filter(
            status__in=(BotOrder.Status.PENDING_SUBMIT, BotOrder.Status.UNKNOWN),
            updated_at__lt=now - older_than,
        )
        .exclude(account__mode=ExchangeAccount.Mode.PAPER)
        .select_related("account")
        .order_by("id")
    )
    resolved = 0
    for row in stuck:
        try:
            broker = exchange_broker(account=row.account)
            broker.remember(row.client_order_id, row.symbol)
            found = broker.get_order(row.client_order_id)
        except (ApplicationError, BrokerError) as exc:
            logger.warning("reconcile of order %s: %s", row.client_order_id, exc)
            continue
        if found is None and row.created_at > now - grace:
            continue  # Binance may hide a new order for minutes: look again later
        if found is None:
            sent = SendResult(None, "not on the exchange after the grace window")
        else:
            sent = SendResult(found)
        fills = exchange_order_fills(broker=broker, sent=sent)
        with transaction.atomic():
            exchange_order_record(row=row, sent=sent, fills=fills)
        logger.info("order %s reconciled to %s", row.client_order_id, row.status)
        resolved += 1
    return resolved
