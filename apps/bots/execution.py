"""Where bots meet a broker: the account's broker, orders written before they are sent, fills.

Every caller (a tick, a stop that flattens, a kill switch, a webhook signal) goes through
these functions, inside one `transaction.atomic()`:

    with account_broker(account=account, clock=clock) as broker:
        fills_record(account=account, broker=broker, fills=broker.on_candle(symbol, candle))
        orders_place(bot=bot, run=run, broker=broker, requests=requests)

A paper account's simulated exchange is one `PaperBook` row, locked for the whole block, so
bots sharing the account take turns and its state commits together with the orders and
fills it produced: an order row exists exactly when the book holds the order (ORD-1 for
paper, with no window between "written" and "sent"). Testnet and live accounts
(apps.bots.exchange_orders) commit the PENDING_SUBMIT row before calling the exchange and
reconcile by client order id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal

from django.db import transaction

from apps.audit.services import audit_record
from apps.bots import engine_state
from apps.bots.bulk import rows_update
from apps.bots.models import AccountRisk, Bot, BotFill, BotLog, BotOrder, BotRun, PaperBook
from apps.common.errors import ApplicationError
from apps.engine.brokers.base import BrokerRejection
from apps.engine.brokers.paper import PaperBroker, PaperConfig
from apps.engine.clock import Clock
from apps.engine.ledger import Adjustment, Ledger
from apps.engine.risk import AccountSnapshot, RiskLimits, RiskState
from apps.engine.types import (
    Candle,
    Fill,
    Instrument,
    Order,
    OrderRequest,
    TradingValueError,
    split_symbol,
)
from apps.exchanges.models import ExchangeAccount

# Paper markets trade on a fine grid, so sizes and prices match the backtest's floats to
# the 8th decimal; live markets bring their own rules from the exchange.
PAPER_TICK = Decimal("1e-8")
PAPER_STEP = Decimal("1e-12")
PAPER_QUOTE_PRECISION = Decimal("1e-12")
# The book's epoch: opening balances are deposits dated before any candle.
OPENING = datetime(2000, 1, 1, tzinfo=UTC)


def paper_instrument(symbol: str) -> Instrument:
    """The trading rules a paper account applies to `symbol` (BASE/QUOTE)."""
    return Instrument(
        symbol,
        tick_size=PAPER_TICK,
        step_size=PAPER_STEP,
        quote_precision=PAPER_QUOTE_PRECISION,
    )


class _PaperInstruments(dict[str, Instrument]):
    """Every BASE/QUOTE symbol is tradable on paper; rules are made on first use."""

    def __missing__(self, symbol: str) -> Instrument:
        instrument = paper_instrument(symbol)
        self[symbol] = instrument
        return instrument

    def __contains__(self, symbol: object) -> bool:
        return isinstance(symbol, str) and self.get(symbol) is not None

    def get(self, symbol: str, default: Instrument | None = None) -> Instrument | None:  # type: ignore[override]
        try:
            return self[symbol]
        except TradingValueError:
            return default


def paper_config(book: PaperBook) -> PaperConfig:
    return PaperConfig(maker_fee=book.maker_fee, taker_fee=book.taker_fee, slippage=book.slippage)


def _opening_ledger(account: ExchangeAccount, quote: str) -> Ledger:
    """A new book holds the account's paper balance of `quote` as its opening deposit."""
    ledger = Ledger(quote)
    balance = account.paper_balances.filter(asset=quote).values_list("amount", flat=True).first()
    if balance:
        ledger.adjust(Adjustment("opening", quote, Decimal(balance), OPENING))
    return ledger


def paper_book_open(*, account: ExchangeAccount, quote: str) -> PaperBook:
    """The account's book, locked until the transaction ends; made on first use in `quote`."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("paper_book_open must run inside the caller's transaction")
    book = PaperBook.objects.select_for_update().filter(account=account).first()
    if book is not None:
        return book
    # Two first uses race on the OneToOne: the loser's insert fails, so lock-then-create
    # goes through the account row, which every first use locks first.
    ExchangeAccount.objects.select_for_update().filter(pk=account.pk).first()
    book = PaperBook.objects.select_for_update().filter(account=account).first()
    if book is not None:
        return book
    broker = PaperBroker(
        ledger=_opening_ledger(account, quote),
        instruments={},
        config=PaperConfig(),
        clock=_StaticClock(OPENING),
    )
    return PaperBook.objects.create(account=account, quote=quote, state=broker.to_dict())


class _StaticClock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment


@contextmanager
def account_broker(*, account: ExchangeAccount, clock: Clock, quote: str) -> Iterator[PaperBroker]:
    """The account's broker for one transaction; a paper book is saved back on clean exit.

    `quote` names the currency a new book is kept in (the bot's symbols' quote, see
    `quote_of`); an existing book keeps its own, and refuses symbols in another quote.
    Testnet (and, once enabled, live) accounts trade through
    `exchange_orders.exchange_broker`, whose orders commit before they are sent; the
    callers that need a paper book (candle ticks) refuse them here."""
    if not account.is_paper:
        raise ApplicationError(
            "this bot trades on paper accounts only; signal bots can use a testnet account",
            field="account",
        )
    book = paper_book_open(account=account, quote=quote)
    broker = PaperBroker.from_dict(
        book.state, instruments={}, config=paper_config(book), clock=clock
    )
    # PaperBroker copies the mapping it is given into a plain dict; paper trades any
    # symbol, so hand it the self-filling one afterwards.
    broker.instruments = _PaperInstruments()
    yield broker
    book.state = broker.to_dict()
    book.save(update_fields=["state", "updated_at"])
    _mirror_balances(account, broker)


class PaperBooks:
    """The paper books of every account a batch of ticks trades on, locked and loaded with
    one query and saved together (`paper_books_open`); the batch form of `account_broker`.

    A batch that rolls back drops the brokers with it: they are only saved by `save`."""

    def __init__(self, accounts: Mapping[int, ExchangeAccount], books: Mapping[int, PaperBook]):
        self.accounts = dict(accounts)
        self.books = dict(books)
        self.brokers = {account_id: _book_broker(book) for account_id, book in books.items()}
        self.totals = {account_id: _totals(b) for account_id, b in self.brokers.items()}

    def broker(self, account_id: int) -> PaperBroker:
        broker = self.brokers.get(account_id)
        if broker is None:
            raise ApplicationError(
                "live trading is not available yet: use a paper account", field="account"
            )
        return broker

    def save(self) -> None:
        """Every book back to its row (one UPDATE); balances mirrored where they moved."""
        now = datetime.now(UTC)
        for account_id, book in self.books.items():
            book.state = self.brokers[account_id].to_dict()
            book.updated_at = now
        rows_update(list(self.books.values()), ["state", "updated_at"])
        for account_id, broker in self.brokers.items():
            if _totals(broker) != self.totals[account_id]:
                _mirror_balances(self.accounts[account_id], broker)


def paper_books_open(
    *, accounts: Sequence[ExchangeAccount], quotes: Mapping[int, str]
) -> PaperBooks:
    """The paper books of `accounts`, locked until the transaction ends (in account order, so
    two batches never deadlock); a book is made on first use in `quotes[account id]`.
    Accounts that are not paper get no broker (`PaperBooks.broker` refuses them)."""
    paper = {a.pk: a for a in accounts if a.is_paper}
    books = {
        book.account_id: book
        for book in PaperBook.objects.select_for_update()
        .filter(account_id__in=sorted(paper))
        .order_by("account_id")
    }
    for account_id in sorted(set(paper) - set(books)):
        books[account_id] = paper_book_open(account=paper[account_id], quote=quotes[account_id])
    return PaperBooks(paper, books)


def _book_broker(book: PaperBook) -> PaperBroker:
    broker = PaperBroker.from_dict(
        book.state,
        instruments={},
        config=paper_config(book),
        clock=_StaticClock(OPENING),
    )
    broker.instruments = _PaperInstruments()
    return broker


def _totals(broker: PaperBroker) -> dict[str, Decimal]:
    return {asset: balance.total for asset, balance in broker.balances().items()}


def _mirror_balances(account: ExchangeAccount, broker: PaperBroker) -> None:
    """Keep the account's PaperBalance rows (the exchanges pages) equal to the book."""
    totals = {asset: balance.total for asset, balance in broker.balances().items()}
    existing = {b.asset: b for b in account.paper_balances.all()}
    for asset, amount in totals.items():
        row = existing.pop(asset, None)
        if row is None:
            account.paper_balances.create(asset=asset, amount=max(amount, Decimal(0)))
        elif row.amount != amount:
            row.amount = max(amount, Decimal(0))
            row.save(update_fields=["amount", "updated_at"])
    for row in existing.values():
        if row.amount:
            row.amount = Decimal(0)
            row.save(update_fields=["amount", "updated_at"])


def orders_place(
    *,
    bot: Bot,
    run: BotRun | None,
    broker: PaperBroker,
    requests: Sequence[OrderRequest],
    candle_time: datetime | None = None,
    audit: Callable[..., object] = audit_record,
) -> list[BotOrder]:
    """Write each request as an order row, place it once, and record the broker's answer.

    A client order id already written is not placed again (a retried tick); a refusal
    becomes a REJECTED order, a log line and an audit event. `audit` takes
    `audit_record`'s arguments: a batch of ticks collects them and writes them last, so
    the audit chain's lock is held only briefly."""
    placed = []
    for request in requests_unwritten(requests):
        row = order_row(bot, run, request, candle_time)
        try:
            _order_sync(row, broker.place_order(request))
        except BrokerRejection as exc:
            _order_rejected(row, str(exc), exc.field)
        order_audit_record(row, event_type="bot.order.placed", owner_id=bot.owner_id, audit=audit)
        placed.append(row)
    return placed


def requests_unwritten(requests: Sequence[OrderRequest]) -> list[OrderRequest]:
    """The requests whose client order id has no row yet (a retried tick or task)."""
    known = set(
        BotOrder.objects.filter(
            client_order_id__in=[r.client_order_id for r in requests]
        ).values_list("client_order_id", flat=True)
    )
    return [r for r in requests if r.client_order_id not in known]


def order_audit_record(
    row: BotOrder,
    *,
    event_type: str,
    owner_id: int,
    audit: Callable[..., object] = audit_record,
) -> None:
    audit(
        event_type=event_type,
        actor=None,
        owner_id=owner_id,
        target=row,
        data=order_audit(row),
        actor_label=f"bot:{row.bot_id}",
    )


def order_row(
    bot: Bot, run: BotRun | None, request: OrderRequest, candle_time: datetime | None
) -> BotOrder:
    return BotOrder.objects.create(
        bot=bot,
        run=run,
        account_id=bot.account_id,
        client_order_id=request.client_order_id,
        symbol=request.symbol,
        side=request.side,
        type=request.type,
        qty=request.qty,
        quote_qty=request.quote_qty,
        limit_price=request.limit_price,
        stop_price=request.stop_price,
        reason=request.reason,
        tag=request.tag,
        candle_time=candle_time,
    )


def order_status(order: Order) -> str:
    """The row's status for an engine order (the engine spells it CANCELED, like ccxt)."""
    value = order.status.value
    return BotOrder.Status.CANCELLED if value == "CANCELED" else value


def _order_sync(row: BotOrder, order: Order) -> None:
    """Copy the broker's view of the order onto its row."""
    row.status = order_status(order)
    row.qty = order.qty
    row.filled_qty = order.filled_qty
    row.average_price = order.average_price
    row.message = order.message
    row.save(
        update_fields=["status", "qty", "filled_qty", "average_price", "message", "updated_at"]
    )


def _order_rejected(row: BotOrder, message: str, field: str | None) -> None:
    row.status = BotOrder.Status.REJECTED
    row.message = message
    row.save(update_fields=["status", "message", "updated_at"])
    BotLog.objects.create(
        bot_id=row.bot_id,
        run_id=row.run_id,
        candle_time=row.candle_time,
        level=BotLog.Level.WARNING,
        source=BotLog.Source.BROKER,
        message=f"order {row.client_order_id} rejected"
        + (f" ({field})" if field else "")
        + f": {message}",
    )


def order_audit(row: BotOrder) -> dict[str, object]:
    return {
        "client_order_id": row.client_order_id,
        "symbol": row.symbol,
        "side": row.side,
        "type": row.type,
        "qty": row.qty,
        "quote_qty": row.quote_qty,
        "limit_price": row.limit_price,
        "stop_price": row.stop_price,
        "status": row.status,
        "reason": row.reason,
    }


def fills_record(
    *, account: ExchangeAccount, broker: PaperBroker, fills: Iterable[Fill]
) -> list[BotFill]:
    """One row per new fill (a fill id seen before is skipped) and its order's new state."""
    fills = list(fills)
    if not fills:
        return []
    orders = {
        o.client_order_id: o
        for o in BotOrder.objects.filter(client_order_id__in={f.client_order_id for f in fills})
    }
    rows = fills_save(account=account, orders=orders, fills=fills)
    for client_order_id in {row.order.client_order_id for row in rows}:
        order = broker.get_order(client_order_id)
        if order is not None:
            _order_sync(orders[client_order_id], order)
    return rows


def fills_save(
    *, account: ExchangeAccount, orders: Mapping[str, BotOrder], fills: Iterable[Fill]
) -> list[BotFill]:
    """Insert the fills of `orders` not stored yet; a fill id is stored once per account
    (the unique constraint settles a race: the loser's row is skipped)."""
    fills = [f for f in fills if f.client_order_id in orders]
    seen = set(
        BotFill.objects.filter(account=account, fill_id__in=[f.fill_id for f in fills]).values_list(
            "fill_id", flat=True
        )
    )
    rows = [
        _fill_row(account, orders[fill.client_order_id], fill)
        for fill in fills
        if fill.fill_id not in seen
    ]
    BotFill.objects.bulk_create(rows, ignore_conflicts=True)
    return rows


def _fill_row(account: ExchangeAccount, order: BotOrder, fill: Fill) -> BotFill:
    return BotFill(
        bot_id=order.bot_id,
        order=order,
        account=account,
        fill_id=fill.fill_id,
        symbol=fill.symbol,
        side=fill.side,
        qty=fill.qty,
        price=fill.price,
        fee=fill.fee,
        fee_asset=fill.fee_asset,
        liquidity=fill.liquidity,
        executed_at=fill.time,
    )


def paper_fill_now(
    *, account: ExchangeAccount, broker: PaperBroker, symbol: str, price: Decimal, at: datetime
) -> list[BotFill]:
    """Execute what is open on `symbol` at one price, now: for bots that trade outside the
    candle schedule (webhook signals, a signal bot closing its positions on stop), whose
    market orders fill at the alert's or the last known price."""
    fills = broker.on_candle(symbol, Candle(at, price, price, price, price))
    return fills_record(account=account, broker=broker, fills=fills)


def last_fill_price(*, account: ExchangeAccount, symbol: str) -> Decimal | None:
    fill = BotFill.objects.filter(account=account, symbol=symbol).order_by("-id").first()
    return None if fill is None else fill.price


def account_snapshot(*, broker: PaperBroker, marks: Mapping[str, Decimal]) -> AccountSnapshot:
    """The account as the risk layer sees it, marked at `marks` (one per held symbol)."""
    return AccountSnapshot(broker.ledger.quote, broker.balances(), dict(marks))


def account_risk_observe(
    *, account_id: int, limits: RiskLimits, equity: Decimal, now: datetime
) -> RiskState:
    """The account-wide risk stage, observed on the whole account's equity and saved; the
    row is locked until the caller's transaction ends, so the account's bots take turns."""
    row = AccountRisk.objects.select_for_update().filter(account_id=account_id).first()
    if row is None:
        AccountRisk.objects.get_or_create(account_id=account_id)  # a racing first use waits
        row = AccountRisk.objects.select_for_update().get(account_id=account_id)
    if engine_state.account_stage_observe(row, limits, equity=equity, now=now):
        row.save(update_fields=["state", "updated_at"])
    return engine_state.risk_state_load(row.state)


def quote_of(symbols: Sequence[str]) -> str:
    """The quote currency of a bot's symbols (the first one's)."""
    return split_symbol(symbols[0])[1]
