"""One run's share of a tick batch (tick.py): its candle's fills booked to its own P&L, the
strategy's decision on the warmup window, risk, orders and the equity snapshot.

Nothing here commits or writes the run: `TickWork` collects the run's log lines, its audit
events, its snapshot and its new memory, and tick.py writes every run of the batch together
(audit events last, so the audit chain's global lock is held only for the end of the batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from apps.bots import engine_state, execution, feeds, run_pnl
from apps.bots.models import AccountRisk, BotLog, BotOrder, BotRun, EquitySnapshot
from apps.bots.services.lifecycle import bot_run_stop_finish
from apps.engine.candles import CandleArrays
from apps.engine.clock import FixedClock
from apps.engine.decide import Decision, prepared_strategy, step
from apps.engine.risk import AccountSnapshot, RiskState, risk_check, risk_observe
from apps.engine.risk import KillSwitch as EngineKillSwitch
from apps.engine.sandbox import SandboxLimits
from apps.engine.script_step import run_script_step
from apps.engine.strategies.base import OrderIntent, Strategy
from apps.engine.types import ZERO, Candle

SCRIPT_LIMITS = SandboxLimits(cpu_seconds=5.0, wall_seconds=10.0, memory_mb=256.0)
TRADE_START = "trade_start_pnl"  # BotRun.risk_state key: realized P&L when a trade opened


@dataclass
class TickWork:
    """What one run's tick accumulates before the batch writes it."""

    run: BotRun
    candle_time: datetime
    close: datetime  # the candle's close in market time: the engine's clock
    windows: dict[str, CandleArrays]
    spec: Any = None  # the strategy spec, built once per run (None: a script)
    memory: dict[str, Any] = field(default_factory=dict)
    orders: int = 0
    logs: list[BotLog] = field(default_factory=list)
    audits: list[dict[str, Any]] = field(default_factory=list)
    snapshot: EquitySnapshot | None = None
    equity: Decimal = ZERO

    def log(self, message: str, *, source: str, level: str = BotLog.Level.INFO) -> None:
        run = self.run
        self.logs.append(
            BotLog(
                bot_id=run.bot_id,
                run=run,
                candle_time=self.candle_time,
                level=level,
                source=source,
                message=message[:4000],
            )
        )

    def audit(self, **event: Any) -> None:
        """Keep an `audit_record` call for the end of the batch (same transaction)."""
        self.audits.append(event)

    def candles(self) -> dict[str, Candle]:
        return {s: Candle.at(w, len(w) - 1) for s, w in self.windows.items()}


@dataclass
class BatchContext:
    """What every run of a batch shares: kill switches per owner, account risk rows."""

    kills: dict[int, EngineKillSwitch] = field(default_factory=dict)
    account_risk: dict[int, AccountRisk] = field(default_factory=dict)
    account_risk_changed: set[int] = field(default_factory=set)
    strategies: dict[tuple[int, int], Strategy] = field(default_factory=dict)

    def kill(self, run: BotRun) -> EngineKillSwitch:
        owner = run.bot.owner_id
        if owner not in self.kills:
            self.kills[owner] = engine_state.kill_switches(run)
        return self.kills[owner]

    def strategy(self, spec: Any, window: CandleArrays) -> Strategy:
        """One prepared strategy per spec and window: the batch's runs share both objects
        (tick.py builds each once), so their indicators and signals are computed once."""
        key = (id(spec), id(window))
        if key not in self.strategies:
            self.strategies[key] = prepared_strategy(spec, window)
        return self.strategies[key]


def candle_fills(work: TickWork, broker: Any) -> None:
    """The candle through the account's book: fills of every open order on the bot's
    symbols (other bots' too; a book sees each candle once, PaperBroker.on_candle)."""
    bot = work.run.bot
    broker.clock = FixedClock(work.close)
    for symbol, candle in work.candles().items():
        broker.instruments.setdefault(symbol, execution.paper_instrument(symbol))
        fills = broker.on_candle(symbol, candle)
        if fills:
            execution.fills_record(account=bot.account, broker=broker, fills=list(fills))


def own_fills_book(work: TickWork, fills: Sequence[run_pnl.RunFill]) -> None:
    """The run's own fills into its P&L, and the loss streak they make."""
    for change in run_pnl.run_fills_apply(work.run, fills):
        _losses_track(work, change)


def trade(work: TickWork, broker: Any, context: BatchContext) -> None:
    """Decisions, risk and orders for every symbol; sets the run's equity and snapshot."""
    run = work.run
    broker.clock = FixedClock(work.close)
    candles = work.candles()
    marks = engine_state.held_marks(broker.ledger)
    marks.update({s: c.close for s, c in candles.items()})
    account = execution.account_snapshot(broker=broker, marks=marks)
    view = _view(run, account)
    if run.status == BotRun.Status.STOPPING:
        bot_run_stop_finish(run=run, broker=broker)
        work.equity = view.equity
        return
    _risk_and_orders(work, broker, account, view, context)
    view = _view(run, execution.account_snapshot(broker=broker, marks=marks))
    work.equity = view.equity
    work.snapshot = _snapshot(work, view, marks)


def _view(run: BotRun, account: AccountSnapshot) -> AccountSnapshot:
    return engine_state.bot_account_view(
        account,
        symbols=list(run.bot.symbols),
        baseline=engine_state.run_baseline(run),
        capital_limit=run.bot.capital_limit,
    )


def _losses_track(work: TickWork, change: run_pnl.PositionChange) -> None:
    """A trade of the run (flat -> position -> flat) that lost money, fees included,
    lengthens the streak, a winning one ends it; N losers in a row start a cooldown of
    `Bot.cooldown_bars` bars without new entries."""
    run, symbol = work.run, change.symbol
    starts = dict((run.risk_state or {}).get(TRADE_START, {}))
    if change.flat_before and not change.flat_after:
        starts[symbol] = str(change.realized_before)
    elif change.flat_after and symbol in starts:
        pnl = run.realized_pnl - Decimal(starts.pop(symbol))
        run.consecutive_losses = run.consecutive_losses + 1 if pnl < 0 else 0
        _cooldown_start(work)
    run.risk_state = {**(run.risk_state or {}), TRADE_START: starts}


def _cooldown_start(work: TickWork) -> None:
    run, bot = work.run, work.run.bot
    limit = bot.cooldown_after_losses
    if limit and run.consecutive_losses >= limit and bot.cooldown_bars:
        run.cooldown_until = work.close + feeds.bar(bot) * bot.cooldown_bars
        run.consecutive_losses = 0
        work.log(
            f"{limit} losing trades in a row: no new entries until "
            f"{run.cooldown_until:%Y-%m-%d %H:%M} UTC",
            source=BotLog.Source.RISK,
            level=BotLog.Level.WARNING,
        )


def _risk_and_orders(
    work: TickWork,
    broker: Any,
    account: AccountSnapshot,
    view: AccountSnapshot,
    context: BatchContext,
) -> None:
    run, bot = work.run, work.run.bot
    limits = engine_state.run_risk_limits(run)
    state = risk_observe(
        engine_state.run_risk_state(run), limits, equity=view.equity, now=work.close
    )
    account_state = _account_risk(context, run, limits, account.equity, work.close)
    kill = context.kill(run)
    memory = run.memory or {}
    for index, symbol in enumerate(bot.symbols):
        holding = broker.ledger.holding(symbol)
        decision = _decide(work, symbol, view, holding.avg_price, memory.get(symbol), context)
        work.memory[symbol] = dict(decision.memory)
        for line in decision.logs:
            work.log(line, source=BotLog.Source.STRATEGY)
        intents = _cooldown_filter(work, decision.intents, symbol)
        result = risk_check(
            intents,
            instrument=broker.instruments[symbol],
            limits=limits,
            state=state,
            account=view,
            kill=kill,
            account_state=account_state,
            id_prefix=f"r{run.pk}-{int(work.candle_time.timestamp())}-{index}",
        )
        state = result.state
        for rejection in result.rejections:
            _rejected(work, rejection.message, rejection.limit)
        for tag in result.cancels:
            _cancel_tagged(work, broker, symbol, tag)
        if result.requests:
            placed = execution.orders_place(
                bot=bot,
                run=run,
                broker=broker,
                requests=list(result.requests),
                candle_time=work.candle_time,
                audit=work.audit,
            )
            work.orders += len(placed)
    engine_state.run_risk_state_save(run, state)


def _account_risk(
    context: BatchContext, run: BotRun, limits: Any, equity: Decimal, now: datetime
) -> RiskState:
    """The account-wide stage, observed on the whole account's equity (the account's
    PaperBook lock, held by the batch, serialises its bots); written with the batch."""
    row = context.account_risk[run.bot.account_id]
    if engine_state.account_stage_observe(row, limits, equity=equity, now=now):
        context.account_risk_changed.add(row.account_id)
    return engine_state.risk_state_load(row.state)


def _decide(
    work: TickWork,
    symbol: str,
    view: AccountSnapshot,
    avg_price: Decimal,
    memory: Any,
    context: BatchContext,
) -> Decision:
    spec = work.spec
    candles = work.windows[symbol]
    state = engine_state.strategy_state(
        spec, view, symbol=symbol, avg_price=avg_price, memory=memory
    )
    if spec is not None:
        strategy = context.strategy(state.strategy, candles)  # this symbol's own spec
        return step(state, candles, FixedClock(work.close), strategy)
    bot = work.run.bot
    version = bot.strategy_version
    assert version is not None
    decision, printed = run_script_step(
        version.script_source,
        engine_state.bot_script_params(bot),
        candles,
        state,
        work.close,
        SCRIPT_LIMITS,
    )
    for line in printed.splitlines():
        work.log(line, source=BotLog.Source.SCRIPT)
    return decision


def _cooldown_filter(
    work: TickWork, intents: Sequence[OrderIntent], symbol: str
) -> list[OrderIntent]:
    until = work.run.cooldown_until
    if until is None or work.close >= until:
        return list(intents)
    kept = []
    for intent in intents:
        if intent.side == "buy" and intent.action == "place":
            _rejected(
                work,
                f"buy {symbol} refused by cooldown: losing streak, no entries until "
                f"{until:%Y-%m-%d %H:%M} UTC",
                "cooldown",
            )
        else:
            kept.append(intent)
    return kept


def _rejected(work: TickWork, message: str, limit: str) -> None:
    run = work.run
    work.log(message, source=BotLog.Source.RISK, level=BotLog.Level.WARNING)
    work.audit(
        event_type="bots.risk_rejected",
        actor=None,
        actor_label="risk",
        owner_id=run.bot.owner_id,
        target=run,
        data={"limit": limit, "message": message, "candle_time": work.candle_time.isoformat()},
    )


def _cancel_tagged(work: TickWork, broker: Any, symbol: str, tag: str) -> None:
    for order in broker.open_orders(symbol):
        if order.tag != tag:
            continue
        closed = broker.cancel_order(order.client_order_id)
        BotOrder.objects.filter(client_order_id=order.client_order_id, run=work.run).update(
            status=execution.order_status(closed)
        )


def _snapshot(work: TickWork, view: AccountSnapshot, marks: dict[str, Decimal]) -> EquitySnapshot:
    cash = view.balances.get(view.quote)
    cash_total = ZERO if cash is None else cash.total
    return EquitySnapshot(
        run=work.run,
        time=work.close,
        equity=view.equity,
        cash=cash_total,
        position_value=view.equity - cash_total,
        realized_pnl=work.run.realized_pnl,
        unrealized_pnl=run_pnl.run_unrealized(work.run, marks),
    )
