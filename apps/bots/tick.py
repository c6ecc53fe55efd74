"""One bot tick: a closed candle through the paper broker, the strategy, risk and orders.

`bot_tick_run(run_id=..., candle_time=...)` is the whole of a tick (DESIGN.md §4), in one
transaction, so a tick either happened completely or not at all:

1. claim: lock the run row (one tick per bot at a time) and insert its `Tick` row (unique
   per run and candle: a second delivery of the same message finds it and returns);
   a candle older than `BOTS_TICK_MAX_LAG_SECONDS` behind its close is dropped (counted);
2. per symbol: the candle to the account's paper broker (fills of earlier orders), then
   the strategy's decision (a script in the sandbox) on the warmup window;
3. risk: observe and check with the run's limits, the account's stage and the kill
   switches; every rejection goes to the bot log and the audit; a loss streak starts a
   cooldown (no new entries for `Bot.cooldown_bars` bars);
4. orders through `execution.orders_place`, an equity snapshot at the close, the run's
   memory and risk state, the Tick done with its delay; the bot card is pushed on commit.

An exception, a feed error or a script error fails that one run (`bot_run_fail`); other
bots are other tasks and never notice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.bots import engine_state, execution, feeds, push
from apps.bots.models import AccountRisk, BotLog, BotOrder, BotRun, EquitySnapshot, Tick
from apps.bots.services.lifecycle import bot_run_fail, bot_run_stop_finish, tick_row_claim
from apps.engine.candles import CandleArrays
from apps.engine.clock import FixedClock
from apps.engine.decide import Decision, step
from apps.engine.risk import AccountSnapshot, RiskState, risk_check, risk_observe
from apps.engine.sandbox import SandboxLimits
from apps.engine.script_backtest import ScriptBacktestError
from apps.engine.script_step import run_script_step
from apps.engine.strategies.base import OrderIntent
from apps.engine.types import ZERO, Candle

logger = logging.getLogger(__name__)

SCRIPT_LIMITS = SandboxLimits(cpu_seconds=5.0, wall_seconds=10.0, memory_mb=256.0)


class TickFailed(Exception):
    """The tick cannot go on for this bot; the message becomes the run's last_error."""


@dataclass
class TickWork:
    """What one tick accumulates before it writes the run."""

    run: BotRun
    candle_time: datetime
    close: datetime  # the candle's close in market time: the engine's clock
    memory: dict[str, Any] = field(default_factory=dict)
    orders: int = 0
    logs: list[BotLog] = field(default_factory=list)

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


def bot_tick_run(
    *, run_id: int, candle_time: datetime, now: Callable[[], datetime] = timezone.now
) -> str:
    """Tick `run_id` on the candle opening at `candle_time`; returns what happened:
    "done", "dropped", "duplicate" (already ticked), "skipped" (not running or paused),
    "retry" (the exchange could not serve the candles now) or "failed" (the run is FAILED
    now)."""
    try:
        with transaction.atomic():
            return _tick(run_id, candle_time, now)
    except feeds.FeedUnavailable as exc:
        # Nothing was written; the scheduler enqueues the candle again when the claim's
        # lease runs out, until it is ticked or too late (then dropped).
        logger.warning("bot run %s: candles unavailable, retrying later: %s", run_id, exc)
        return "retry"
    except (OperationalError, InterfaceError) as exc:
        # The database itself is unreachable (full, restarting): not the bot's fault, and
        # nothing was written. Drop the broken connection; the lease brings the tick back.
        logger.warning("bot run %s: database unavailable, retrying later: %s", run_id, exc)
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()
        return "retry"
    except (TickFailed, feeds.FeedError) as exc:
        error = str(exc)
    except SoftTimeLimitExceeded:
        raise  # tasks.bot_tick counts the candle as dropped
    except ScriptBacktestError as exc:
        error = str(exc)
        _script_output_keep(run_id, candle_time, exc.log)
    except Exception as exc:
        logger.exception("bot run %s failed on %s", run_id, candle_time)
        error = f"{type(exc).__name__}: {exc}"
    bot_run_fail(run_id=run_id, error=error, candle_time=candle_time)
    return "failed"


def _tick(run_id: int, candle_time: datetime, now: Callable[[], datetime]) -> str:
    run = (
        BotRun.objects.select_for_update(of=("self",))
        .select_related("bot__account", "bot__strategy_version__strategy")
        .get(pk=run_id)
    )
    bot = run.bot
    if run.status not in (BotRun.Status.RUNNING, BotRun.Status.STOPPING) or run.paused_at:
        return "skipped"
    if run.last_candle_at is not None and candle_time <= run.last_candle_at:
        return "duplicate"
    started = now()
    close = feeds.closes_at(bot, run, candle_time)
    status = Tick.Status.RUNNING
    lag = timedelta(seconds=float(getattr(settings, "BOTS_TICK_MAX_LAG_SECONDS", 300)))
    if run.status == BotRun.Status.RUNNING and started - close > lag:
        status = Tick.Status.DROPPED
    tick_id = tick_row_claim(run_id=run.pk, candle_time=candle_time, at=started, status=status)
    if tick_id is None:
        return "duplicate"
    if status == Tick.Status.DROPPED:
        _dropped(run, candle_time, started)
        return "dropped"
    work = TickWork(run, candle_time, candle_time + feeds.bar(bot))
    windows = {symbol: feeds.window(bot, symbol, candle_time) for symbol in bot.symbols}
    equity = _trade(work, windows)
    _finish(work, tick_id, started, close, equity, now)
    return "done"


def _dropped(run: BotRun, candle_time: datetime, at: datetime) -> None:
    Tick.objects.filter(run=run, candle_time=candle_time).update(
        finished_at=at, note="older than the allowed lag"
    )
    run.ticks_dropped += 1
    run.last_candle_at = candle_time
    run.next_due_at = at
    run.save(update_fields=["ticks_dropped", "last_candle_at", "next_due_at", "updated_at"])


def _trade(work: TickWork, windows: dict[str, CandleArrays]) -> Decimal:
    """Fills, decisions, risk and orders for every symbol; returns the bot's equity."""
    run, bot = work.run, work.run.bot
    clock = FixedClock(work.close)
    with execution.account_broker(
        account=bot.account, clock=clock, quote=execution.quote_of(bot.symbols)
    ) as broker:
        candles = {s: Candle.at(w, len(w) - 1) for s, w in windows.items()}
        for symbol, candle in candles.items():
            broker.instruments.setdefault(symbol, execution.paper_instrument(symbol))
            flat_before = broker.ledger.holding(symbol).qty == 0
            realized = broker.ledger.realized
            fills = broker.on_candle(symbol, candle)
            if fills:
                execution.fills_record(account=bot.account, broker=broker, fills=list(fills))
                pnl_before = run.realized_pnl
                run.realized_pnl += broker.ledger.realized - realized
                flat_after = broker.ledger.holding(symbol).qty == 0
                _losses_track(work, symbol, pnl_before, flat_before, flat_after)
        marks = engine_state.held_marks(broker.ledger)
        marks.update({s: c.close for s, c in candles.items()})
        account = execution.account_snapshot(broker=broker, marks=marks)
        view = _view(run, account)
        if run.status == BotRun.Status.STOPPING:
            bot_run_stop_finish(run=run, broker=broker)
            return view.equity
        _risk_and_orders(work, broker, windows, account, view)
        view = _view(run, execution.account_snapshot(broker=broker, marks=marks))
        _snapshot(work, view, broker, marks)
        return view.equity


def _view(run: BotRun, account: AccountSnapshot) -> AccountSnapshot:
    return engine_state.bot_account_view(
        account,
        symbols=list(run.bot.symbols),
        baseline=engine_state.run_baseline(run),
        capital_limit=run.bot.capital_limit,
    )


TRADE_START = "trade_start_pnl"  # BotRun.risk_state key: realized P&L when a trade opened


def _losses_track(
    work: TickWork, symbol: str, pnl_before: Decimal, flat_before: bool, flat_after: bool
) -> None:
    """A trade (flat -> position -> flat) that lost money, fees included, lengthens the
    streak, a winning one ends it; N losers in a row start a cooldown of
    `Bot.cooldown_bars` bars without new entries."""
    run = work.run
    starts = dict((run.risk_state or {}).get(TRADE_START, {}))
    if flat_before and not flat_after:
        starts[symbol] = str(pnl_before)
    elif flat_after and symbol in starts:
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
    windows: dict[str, CandleArrays],
    account: AccountSnapshot,
    view: AccountSnapshot,
) -> None:
    run, bot = work.run, work.run.bot
    limits = engine_state.run_risk_limits(run)
    state = risk_observe(
        engine_state.run_risk_state(run), limits, equity=view.equity, now=work.close
    )
    account_state = _account_risk(run, limits, account.equity, work.close)
    kill = engine_state.kill_switches(run)
    memory = run.memory or {}
    for index, symbol in enumerate(bot.symbols):
        holding = broker.ledger.holding(symbol)
        decision = _decide(
            work, windows[symbol], view, symbol, holding.avg_price, memory.get(symbol)
        )
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
            )
            work.orders += len(placed)
    engine_state.run_risk_state_save(run, state)


def _account_risk(run: BotRun, limits: Any, equity: Decimal, now: datetime) -> RiskState:
    """The account-wide stage, observed on the whole account's equity (the account's
    PaperBook lock, taken by account_broker, already serialises its bots)."""
    row, _ = AccountRisk.objects.get_or_create(account_id=run.bot.account_id)
    before = engine_state.risk_state_load(row.state)
    after = risk_observe(before, limits, equity=equity, now=now)
    if after != before:
        row.state = after.to_dict()
        row.save(update_fields=["state", "updated_at"])
    return after


def _decide(
    work: TickWork,
    candles: CandleArrays,
    view: AccountSnapshot,
    symbol: str,
    avg_price: Decimal,
    memory: Any,
) -> Decision:
    bot = work.run.bot
    spec = engine_state.bot_strategy_spec(bot)
    state = engine_state.strategy_state(
        spec, view, symbol=symbol, avg_price=avg_price, memory=memory
    )
    if spec is not None:
        return step(state, candles, FixedClock(work.close))
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
    audit_record(
        event_type="bots.risk_rejected",
        actor=None,
        actor_label="risk",
        owner=run.bot.owner,
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


def _snapshot(
    work: TickWork, view: AccountSnapshot, broker: Any, marks: dict[str, Decimal]
) -> None:
    cash = view.balances.get(view.quote)
    positions = view.equity - (ZERO if cash is None else cash.total)
    EquitySnapshot.objects.create(
        run=work.run,
        time=work.close,
        equity=view.equity,
        cash=ZERO if cash is None else cash.total,
        position_value=positions,
        realized_pnl=work.run.realized_pnl,
        unrealized_pnl=broker.ledger.unrealized(marks),
    )


def _finish(
    work: TickWork,
    tick_id: int,
    started: datetime,
    close: datetime,
    equity: Decimal,
    now: Callable[[], datetime],
) -> None:
    run, bot = work.run, work.run.bot
    if work.logs:
        BotLog.objects.bulk_create(work.logs)
    done = now()
    if run.status == BotRun.Status.RUNNING:
        run.memory = work.memory or run.memory
        run.next_due_at = feeds.closes_at(bot, run, work.candle_time + feeds.bar(bot))
    run.last_candle_at = work.candle_time
    run.last_tick_at = done
    run.ticks_done += 1
    run.equity_last = equity
    run.save()
    delay = max(0, int((done - close).total_seconds() * 1000))
    Tick.objects.filter(pk=tick_id).update(
        status=Tick.Status.DONE, finished_at=done, delay_ms=delay, orders=work.orders
    )
    push.bot_push_on_commit(run.pk)


def _script_output_keep(run_id: int, candle_time: datetime, printed: str) -> None:
    """What a failing script printed, kept in the bot log (the tick itself rolled back)."""
    lines = [line for line in printed.splitlines() if line.strip()][-50:]
    if not lines:
        return
    bot_id = BotRun.objects.filter(pk=run_id).values_list("bot_id", flat=True).first()
    BotLog.objects.bulk_create(
        BotLog(
            bot_id=bot_id,
            run_id=run_id,
            candle_time=candle_time,
            source=BotLog.Source.SCRIPT,
            message=line,
        )
        for line in lines
    )


def bot_tick_overrun(*, run_id: int, candle_time: datetime) -> None:
    """The tick hit its soft time limit (and rolled back): count the candle as dropped
    and let the bot go on with the next one."""
    with transaction.atomic():
        run = BotRun.objects.select_for_update().get(pk=run_id)
        at = timezone.now()
        if (
            tick_row_claim(
                run_id=run.pk, candle_time=candle_time, at=at, status=Tick.Status.DROPPED
            )
            is None
        ):
            return
        _dropped(run, candle_time, at)
        Tick.objects.filter(run=run, candle_time=candle_time).update(note="over the time limit")
        BotLog.objects.create(
            bot_id=run.bot_id,
            run=run,
            candle_time=candle_time,
            level=BotLog.Level.WARNING,
            message="tick dropped: it ran over its time limit",
        )
