"""A bot run's state machine: NEW -> RUNNING -> STOPPING -> STOPPED, plus DONE and FAILED.

Every transition is one transaction with its `audit_record`. Positions live on the paper
account (shared by its bots), so stopping with "close positions" places market sells of the
bot's symbols; on paper they fill on the next candle, so the run stays STOPPING until the
next tick sees no open order of the run left (`bot_run_stop_finish`), then STOPPED. When no
candle will come (a signal bot, a replay that ran out of candles) they fill at once at the
last price the bot saw, and the run is STOPPED at once.

Kill switches: `bot_kill` stops one bot closing its positions; `user_panic` engages the
owner's switch (the risk layer then refuses every intent of their bots) and kills each of
their bots; `global_kill_set` is the operators' switch over every bot. A breach that moved
a run or an account to REDUCING or HALTED goes back to ACTIVE only by `run_risk_resume` /
`account_risk_resume`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.bots import engine_state, exchange_orders, execution, feeds, run_pnl
from apps.bots.models import (
    AccountRisk,
    Bot,
    BotLog,
    BotOrder,
    BotRun,
    KillSwitch,
    PaperBook,
    Tick,
)
from apps.bots.selectors import bot_marks
from apps.common.errors import ApplicationError
from apps.common.logging import redact
from apps.engine.brokers.ccxt_live import BrokerError
from apps.engine.clock import FixedClock
from apps.engine.risk import RiskConfigError, RiskLimits, risk_flatten, risk_resume
from apps.engine.types import split_symbol

ERROR_MAX_CHARS = 2000


def _audit(event: str, run: BotRun, actor: Any, **data: Any) -> None:
    audit_record(
        event_type=f"bots.{event}",
        actor=actor,
        actor_label="" if actor is not None else "system",
        owner=run.bot.owner,
        target=run,
        data={"bot_id": run.bot_id, "status": run.status, **data},
    )


def _locked(run: BotRun) -> BotRun:
    return (
        BotRun.objects.select_for_update(of=("self",))
        .select_related("bot__account", "bot__owner")
        .get(pk=run.pk)
    )


@transaction.atomic
def bot_run_start(
    *, bot: Bot, acting_user: Any, limits: RiskLimits | None = None, now: datetime | None = None
) -> BotRun:
    """A new RUNNING run of `bot` (NEW -> RUNNING). `limits` replaces the bot's resolved
    risk limits (a replay of a backtest uses RiskLimits.unlimited("all_in"))."""
    now = now or timezone.now()
    signals = bot.kind == Bot.Kind.SIGNAL
    if not signals and bot.strategy_version_id is None:
        raise ApplicationError("a strategy bot needs a strategy version", field="strategy_version")
    if (
        not signals
        and bot.feed == Bot.Feed.REPLAY
        and (bot.replay_start is None or not bot.market_exchange)
    ):
        raise ApplicationError("a replay bot needs a start and a market exchange", field="feed")
    if _switch_engaged(bot.owner_id):
        raise ApplicationError("a kill switch is engaged: no bot can start", field="bot")
    try:
        resolved = limits or engine_state.bot_risk_limits(bot)
    except RiskConfigError as exc:
        raise ApplicationError(str(exc), field=exc.field or "risk_overrides") from exc
    equity, baseline = _account_at_start(bot, now)
    run = BotRun(
        bot=bot,
        status=BotRun.Status.RUNNING,
        started_at=now,
        # A signal bot acts on webhook alerts, never on the scheduler's candles.
        next_due_at=None if signals else now,
        replay_anchor=now if bot.feed == Bot.Feed.REPLAY and not signals else None,
        close_positions=bot.close_on_stop,
        limits=engine_state.limits_to_json(resolved, baseline=baseline),
        equity_start=equity,
        equity_last=equity,
    )
    try:
        with transaction.atomic():
            run.save()
    except IntegrityError:
        raise ApplicationError(f"{bot.name} is already running", field="bot") from None
    _audit("run_started", run, acting_user, previous="NEW", assume_position=bot.assume_position)
    return run


def _account_at_start(bot: Bot, now: datetime) -> tuple[Decimal, dict[str, Decimal]]:
    """The bot's equity at start, and the holdings it must leave alone (assume_position
    off: what the account already held of its base assets)."""
    if not bot.account.is_paper:
        return _exchange_account_at_start(bot)
    with execution.account_broker(
        account=bot.account, clock=FixedClock(now), quote=execution.quote_of(bot.symbols)
    ) as broker:
        ledger = broker.ledger
        return _start_of(bot, ledger.balance(ledger.quote), lambda s: ledger.holding(s).qty)


def _exchange_account_at_start(bot: Bot) -> tuple[Decimal, dict[str, Decimal]]:
    """As `_account_at_start`, from the exchange's balances (a testnet signal bot)."""
    try:
        balances = exchange_orders.exchange_broker(account=bot.account).balances()
    except BrokerError as exc:
        raise ApplicationError(f"The exchange did not answer: {exc}", field="account") from None

    def total(asset: str) -> Decimal:
        return balances[asset].total if asset in balances else Decimal(0)

    cash = total(execution.quote_of(bot.symbols))
    return _start_of(bot, cash, lambda symbol: total(split_symbol(symbol)[0]))


def _start_of(
    bot: Bot, cash: Decimal, held: Callable[[str], Decimal]
) -> tuple[Decimal, dict[str, Decimal]]:
    """Equity (cash, capped by the bot's capital limit) and the baseline holdings."""
    baseline = {}
    if not bot.assume_position:
        baseline = {symbol: qty for symbol in bot.symbols if (qty := held(symbol)) > 0}
    equity = cash if bot.capital_limit is None else min(cash, bot.capital_limit)
    return equity, baseline


def _switch_engaged(user_id: int) -> bool:
    return (
        KillSwitch.objects.filter(engaged=True, user__isnull=True).exists()
        or KillSwitch.objects.filter(engaged=True, user_id=user_id).exists()
    )


@transaction.atomic
def bot_run_pause(*, run: BotRun, acting_user: Any) -> BotRun:
    run = _locked(run)
    if run.status != BotRun.Status.RUNNING or run.paused_at is not None:
        raise ApplicationError("only a running, unpaused bot can be paused", field="status")
    run.paused_at = timezone.now()
    run.save(update_fields=["paused_at", "updated_at"])
    _audit("run_paused", run, acting_user)
    return run


@transaction.atomic
def bot_run_resume(*, run: BotRun, acting_user: Any) -> BotRun:
    """Unpause; a replay's clock moves on by the pause, so no candle counts as late."""
    run = _locked(run)
    if run.paused_at is None:
        raise ApplicationError("the bot is not paused", field="status")
    now = timezone.now()
    if run.replay_anchor is not None:
        run.replay_anchor += now - run.paused_at
    run.paused_at = None
    run.next_due_at = now
    run.save(update_fields=["paused_at", "replay_anchor", "next_due_at", "updated_at"])
    _audit("run_resumed", run, acting_user)
    return run


@transaction.atomic
def bot_run_stop(
    *, run: BotRun, acting_user: Any, close_positions: bool, event: str = "run_stopping"
) -> BotRun:
    """RUNNING -> STOPPING: cancel the run's open orders and, with `close_positions`, sell
    the bot's holdings at market; STOPPED at once when nothing is left to fill."""
    run = _locked(run)
    if run.status not in (BotRun.Status.RUNNING, BotRun.Status.STOPPING):
        raise ApplicationError(f"the bot is {run.get_status_display().lower()}", field="status")
    now = timezone.now()
    previous = run.status
    run.status, run.close_positions, run.paused_at = BotRun.Status.STOPPING, close_positions, None
    run.next_due_at = None if run.bot.kind == Bot.Kind.SIGNAL else now
    run.save(update_fields=["status", "close_positions", "paused_at", "next_due_at", "updated_at"])
    _audit(event, run, acting_user, previous=previous, close_positions=close_positions)
    clock = FixedClock(feeds.market_now(run.bot, run, now))
    with execution.account_broker(
        account=run.bot.account, clock=clock, quote=execution.quote_of(run.bot.symbols)
    ) as broker:
        _cancel_open(run, broker)
        placed = _flatten(run, broker, now) if close_positions else []
        if placed and not _candle_ahead(run, now):
            _fill_exits_now(run, broker, placed, clock.now())
        if not run.orders.filter(status__in=BotOrder.OPEN_STATUSES).exists():
            _stopped(run, acting_user)
    return run


def _candle_ahead(run: BotRun, now: datetime) -> bool:
    """Whether a tick will still come to fill the stop's sells: never for a signal bot (no
    candle schedule) nor for a replay that ran out of candles."""
    bot = run.bot
    if bot.kind == Bot.Kind.SIGNAL:
        return False
    return bot.feed != Bot.Feed.REPLAY or feeds.next_candle(bot, run, now) is not feeds.REPLAY_OVER


def _fill_exits_now(run: BotRun, broker: Any, placed: list[BotOrder], at: datetime) -> None:
    """Fill the stop's sells at once at the last price the bot saw (its last candle's
    close, else the account's last fill of the symbol), and book their P&L on the run."""
    bot = run.bot
    marks = bot_marks(bot=bot, run=run)
    for symbol in {order.symbol for order in placed}:
        price = marks.get(symbol)
        if price is not None:
            execution.paper_fill_now(
                account=bot.account, broker=broker, symbol=symbol, price=price, at=at
            )
    if bot.kind == Bot.Kind.SIGNAL:
        return  # a signal run keeps no P&L of its own (its alerts' fills are the record)
    # The run's own books, as a tick keeps them: other bots' fills on the account never count.
    run_pnl.run_fills_apply(run, run_pnl.run_fills_unbooked([run]).get(run.pk, []))
    held = engine_state.held_marks(broker.ledger)
    view = engine_state.bot_account_view(
        execution.account_snapshot(broker=broker, marks={**held, **marks}),
        symbols=list(bot.symbols),
        baseline=engine_state.run_baseline(run),
        capital_limit=bot.capital_limit,
    )
    run.equity_last = view.equity
    run.save(update_fields=["realized_pnl", "risk_state", "equity_last", "updated_at"])


def _cancel_open(run: BotRun, broker: Any) -> None:
    for order in run.orders.filter(status__in=BotOrder.OPEN_STATUSES):
        known = broker.get_order(order.client_order_id)
        if known is not None and known.status.is_open:
            known = broker.cancel_order(order.client_order_id)
        if known is None or not known.status.is_open:
            order.status = (
                BotOrder.Status.CANCELLED if known is None else execution.order_status(known)
            )
            order.save(update_fields=["status", "updated_at"])


def _flatten(run: BotRun, broker: Any, now: datetime) -> list[BotOrder]:
    bot = run.bot
    instruments = []
    for symbol in bot.symbols:
        instruments.append(
            broker.instruments.setdefault(symbol, execution.paper_instrument(symbol))
        )
    # Only the quantities matter to a flatten; a holding's cost stands in for its mark.
    marks = engine_state.held_marks(broker.ledger)
    marks.update({symbol: marks.get(symbol, Decimal(1)) for symbol in bot.symbols})
    view = engine_state.bot_account_view(
        execution.account_snapshot(broker=broker, marks=marks),
        symbols=list(bot.symbols),
        baseline=engine_state.run_baseline(run),
        capital_limit=None,
    )
    requests = risk_flatten(view, instruments, id_prefix=f"r{run.pk}-x{int(now.timestamp())}")
    if not requests:
        return []
    return list(execution.orders_place(bot=bot, run=run, broker=broker, requests=list(requests)))


def _stopped(run: BotRun, actor: Any) -> None:
    run.status, run.ended_at, run.next_due_at = BotRun.Status.STOPPED, timezone.now(), None
    run.save(update_fields=["status", "ended_at", "next_due_at", "updated_at"])
    _audit("run_stopped", run, actor, close_positions=run.close_positions)


def bot_run_stop_finish(*, run: BotRun, broker: Any) -> bool:
    """In a STOPPING run's tick (after the candle's fills): STOPPED once no order of the
    run is open any more. Runs inside the tick's transaction."""
    if run.orders.filter(status__in=BotOrder.OPEN_STATUSES).exists():
        return False
    _stopped(run, None)
    return True


def bot_run_fail(*, run_id: int, error: str, candle_time: datetime | None = None) -> None:
    """FAILED with `last_error` (redacted, shortened), audited; the candle's Tick is
    recorded as failed. A run that is not active any more is left alone."""
    error = redact(error)[:ERROR_MAX_CHARS]
    with transaction.atomic():
        run = BotRun.objects.select_for_update(of=("self",)).select_related("bot").get(pk=run_id)
        if not run.is_active:
            return
        now = timezone.now()
        previous = run.status
        run.status, run.last_error, run.ended_at, run.next_due_at = (
            BotRun.Status.FAILED,
            error,
            now,
            None,
        )
        run.save(update_fields=["status", "last_error", "ended_at", "next_due_at", "updated_at"])
        if candle_time is not None:
            _tick_failed(run, candle_time, now, error)
        BotLog.objects.create(
            bot_id=run.bot_id,
            run=run,
            candle_time=candle_time,
            level=BotLog.Level.ERROR,
            message=f"the bot failed: {error}",
        )
        _audit("run_failed", run, None, previous=previous, error=error)


def _tick_failed(run: BotRun, candle_time: datetime, now: datetime, error: str) -> None:
    tick_row_claim(
        run_id=run.pk, candle_time=candle_time, at=now, status=Tick.Status.FAILED, note=error
    )


def tick_row_claim(
    *, run_id: int, candle_time: datetime, at: datetime, status: str, note: str = ""
) -> int | None:
    """INSERT ... ON CONFLICT DO NOTHING of the (run, candle) Tick row: its id, or None
    when the row already exists (the candle was ticked, dropped or failed before)."""
    finished = None if status == Tick.Status.RUNNING else at
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bots_tick (run_id, candle_time, status, started_at, finished_at,"
            " orders, note) VALUES (%s, %s, %s, %s, %s, 0, %s)"
            " ON CONFLICT (run_id, candle_time) DO NOTHING RETURNING id",
            [run_id, candle_time, status, at, finished, note[:200]],
        )
        row = cursor.fetchone()
    return None if row is None else int(row[0])


@transaction.atomic
def bot_run_finish(*, run: BotRun) -> None:
    """A replay ran out of candles: RUNNING -> DONE (positions stay as they are)."""
    run = _locked(run)
    if run.status != BotRun.Status.RUNNING:
        return
    run.status, run.ended_at, run.next_due_at = BotRun.Status.DONE, timezone.now(), None
    run.save(update_fields=["status", "ended_at", "next_due_at", "updated_at"])
    _audit("run_done", run, None, previous=BotRun.Status.RUNNING)


def bot_kill(*, bot: Bot, acting_user: Any) -> BotRun | None:
    """The bot's kill switch: cancel its orders, sell its positions, stop (STOPPED after
    the sells fill on the next candle, or at once when there is nothing to sell)."""
    run = bot.runs.filter(status__in=BotRun.ACTIVE).first()
    if run is None:
        return None
    if run.status == BotRun.Status.NEW:
        return run
    return bot_run_stop(run=run, acting_user=acting_user, close_positions=True, event="killed")


@transaction.atomic
def user_panic(*, user: Any, acting_user: Any, reason: str = "") -> int:
    """Panic: the user's kill switch on (every intent of their bots refused, no start),
    then every running bot of theirs killed. Returns how many bots were killed."""
    switch, _ = KillSwitch.objects.select_for_update().get_or_create(user=user)
    switch.engaged, switch.engaged_at, switch.engaged_by = True, timezone.now(), acting_user
    switch.reason = reason[:200]
    switch.save()
    audit_record(
        event_type="bots.user_panic",
        actor=acting_user,
        owner=user,
        target=switch,
        data={"reason": switch.reason},
    )
    killed = 0
    for bot in Bot.objects.filter(owner=user, runs__status__in=BotRun.ACTIVE).distinct():
        killed += bot_kill(bot=bot, acting_user=acting_user) is not None
    return killed


@transaction.atomic
def user_panic_release(*, user: Any, acting_user: Any) -> None:
    switch = KillSwitch.objects.select_for_update().filter(user=user, engaged=True).first()
    if switch is None:
        return
    switch.engaged = False
    switch.save(update_fields=["engaged", "updated_at"])
    audit_record(
        event_type="bots.user_panic_released", actor=acting_user, owner=user, target=switch
    )


@transaction.atomic
def global_kill_set(*, engaged: bool, acting_user: Any, reason: str = "") -> KillSwitch:
    """The operators' switch: while on, the risk layer refuses every bot's intents and no
    bot can start."""
    switch = KillSwitch.objects.select_for_update().filter(user__isnull=True).first()
    if switch is None:
        switch = KillSwitch(user=None)
    switch.engaged = engaged
    if engaged:
        switch.engaged_at, switch.engaged_by, switch.reason = (
            timezone.now(),
            acting_user,
            reason[:200],
        )
    switch.save()
    audit_record(
        event_type="bots.global_kill_engaged" if engaged else "bots.global_kill_released",
        actor=acting_user,
        target=switch,
        data={"reason": switch.reason},
    )
    return switch


@transaction.atomic
def run_risk_resume(*, run: BotRun, acting_user: Any) -> BotRun:
    """REDUCING/HALTED -> ACTIVE for one run, by an explicit (audited) action."""
    run = _locked(run)
    state = engine_state.run_risk_state(run)
    equity = run.equity_last or run.equity_start or Decimal(0)
    resumed = risk_resume(state, equity=equity)
    engine_state.run_risk_state_save(run, resumed)
    run.save(update_fields=["risk_state", "updated_at"])
    _audit("risk_resumed", run, acting_user, stage_before=state.stage.value)
    return run


@transaction.atomic
def account_risk_resume(*, account: Any, acting_user: Any) -> None:
    """The account-wide stage back to ACTIVE (every bot of the account trades again), its
    peak and day-start equity restarting at the whole account's equity, as the tick
    observes it (not one bot's share, or the next tick would see a jump or a breach)."""
    # The book first, then the risk row: the order a tick takes them in.
    equity = _account_equity(account)
    row, _ = AccountRisk.objects.select_for_update().get_or_create(account=account)
    state = engine_state.risk_state_load(row.state)
    row.state = risk_resume(state, equity=equity).to_dict()
    row.save(update_fields=["state", "updated_at"])
    audit_record(
        event_type="bots.account_risk_resumed",
        actor=acting_user,
        owner=account.owner,
        target=account,
        data={"stage_before": state.stage.value, "equity": str(equity)},
    )


def _account_equity(account: Any) -> Decimal:
    """The paper account's equity in its book's quote, each holding marked at the
    account's last fill of it (at its cost when it has none)."""
    quote = PaperBook.objects.filter(account=account).values_list("quote", flat=True).first()
    if quote is None:
        return Decimal(0)  # never traded: no bot of it was ever observed
    with execution.account_broker(
        account=account, clock=FixedClock(timezone.now()), quote=quote
    ) as broker:
        marks = engine_state.held_marks(broker.ledger)
        for symbol in marks:
            price = execution.last_fill_price(account=account, symbol=symbol)
            marks[symbol] = marks[symbol] if price is None else price
        return execution.account_snapshot(broker=broker, marks=marks).equity
