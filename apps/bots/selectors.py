"""Reads for bots, always scoped to the requesting user (404 for anyone else), and the
data the bot pages and the live card show."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from apps.accounts.models import User
from apps.bots.models import (
    AccountRisk,
    Bot,
    BotFill,
    BotLog,
    BotOrder,
    BotRun,
    EquitySnapshot,
    KillSwitch,
    PaperBook,
)
from apps.engine.ledger import Ledger
from apps.engine.risk import PROFILES, Stage
from apps.engine.round_trips import RoundTrip, round_trips
from apps.engine.types import Fill
from apps.exchanges.models import ExchangeAccount
from apps.market.models import Candle, CandleSeries
from apps.strategies.models import StrategyKind, StrategyVersion


@dataclass(frozen=True)
class Position:
    symbol: str
    qty: Decimal
    avg_price: Decimal
    mark: Decimal | None
    unrealized_pnl: Decimal | None


def bot_list_for_user(*, user: User) -> QuerySet[Bot]:
    """The user's bots, newest first, each with its runs (newest first) prefetched."""
    runs = BotRun.objects.order_by("-created_at", "-id")
    return (
        Bot.objects.filter(owner=user, archived_at__isnull=True)
        .select_related("account", "strategy_version__strategy")
        .prefetch_related(Prefetch("runs", queryset=runs))
        .order_by("-created_at", "-id")
    )


def bot_get_for_user(*, user: User, bot_id: int) -> Bot:
    """The user's bot, or 404 when it does not exist or belongs to someone else."""
    queryset = Bot.objects.select_related("account", "strategy_version__strategy")
    return get_object_or_404(queryset, pk=bot_id, owner=user)


def user_panic_engaged(*, user: User) -> bool:
    """Whether the user's panic switch is on (no bot of theirs may start)."""
    return KillSwitch.objects.filter(user=user, engaged=True).exists()


def bot_run_latest(*, bot: Bot) -> BotRun | None:
    """The bot's newest run; from the runs `bot_list_for_user` prefetched (newest first)
    when there, so a list of bots costs no query per bot."""
    prefetched = getattr(bot, "_prefetched_objects_cache", {}).get("runs")
    if prefetched is not None:
        return next(iter(prefetched), None)
    return BotRun.objects.filter(bot=bot).order_by("-created_at", "-id").first()


def bot_create_choices(*, user: User) -> dict[str, Any]:
    """What the new-bot form offers: the user's versions and paper accounts, the stored
    series a replay can use and every risk profile's values and caps."""
    versions = (
        StrategyVersion.objects.filter(strategy__owner=user, strategy__archived_at__isnull=True)
        .exclude(strategy__kind=StrategyKind.RECORDED)  # alerts replay in backtests, not bots
        .select_related("strategy")
        .order_by("-strategy__updated_at", "strategy_id", "-number")
    )
    accounts = ExchangeAccount.objects.filter(owner=user).only("id", "label", "exchange", "mode")
    series = CandleSeries.objects.order_by("exchange", "symbol", "timeframe")
    return {
        "versions": versions,
        "accounts": accounts,
        "series": list(series),
        "profiles": risk_profile_help(),
    }


def risk_profile_help() -> list[dict[str, Any]]:
    """Each profile's defaults and caps, for the form's help text."""
    rows = []
    for profile in PROFILES.values():
        names = sorted(set(profile.defaults) | set(profile.caps) - {"sizing"})
        settings = [
            {"name": name, "value": profile.defaults.get(name), "cap": profile.caps.get(name)}
            for name in names
            if name != "sizing"
        ]
        rows.append({"name": profile.name, "settings": settings})
    return rows


def _last_close(bot: Bot, symbol: str, run: BotRun | None) -> Decimal | None:
    """The close of the run's last candle (the mark the tick used), else the last fill."""
    if run is not None and run.last_candle_at is not None:
        exchange = bot.market_exchange or bot.account.exchange
        close = (
            Candle.objects.filter(
                series__exchange=exchange,
                series__symbol=symbol,
                series__timeframe=bot.timeframe,
                open_time__lte=run.last_candle_at,
            )
            .order_by("-open_time")
            .values_list("close", flat=True)
            .first()
        )
        if close is not None:
            return Decimal(str(close))
    fill = BotFill.objects.filter(account_id=bot.account_id, symbol=symbol).last()
    return None if fill is None else fill.price


def bot_marks(*, bot: Bot, run: BotRun | None) -> dict[str, Decimal]:
    marks = {symbol: _last_close(bot, symbol, run) for symbol in bot.symbols}
    return {symbol: mark for symbol, mark in marks.items() if mark is not None}


def bot_positions(*, bot: Bot, marks: dict[str, Decimal]) -> list[Position]:
    """The account's holdings of the bot's symbols (positions are shared per account)."""
    book = PaperBook.objects.filter(account_id=bot.account_id).only("state").first()
    if book is None:
        return []
    ledger = Ledger.from_dict(book.state["ledger"])
    positions = []
    for symbol in bot.symbols:
        holding = ledger.holding(symbol)
        if holding.qty <= 0:
            continue
        mark = marks.get(symbol)
        unrealized = None if mark is None else holding.unrealized(mark)
        positions.append(Position(symbol, holding.qty, holding.avg_price, mark, unrealized))
    return positions


def _engine_fill(fill: BotFill) -> Fill:
    return Fill(
        fill_id=fill.fill_id,
        client_order_id=fill.order.client_order_id,
        symbol=fill.symbol,
        side=fill.side,  # type: ignore[arg-type]
        qty=fill.qty,
        price=fill.price,
        fee=fill.fee,
        fee_asset=fill.fee_asset,
        liquidity=fill.liquidity,  # type: ignore[arg-type]
        time=fill.executed_at,
        seq=fill.pk,
    )


def bot_fill_list(*, bot: Bot) -> QuerySet[BotFill]:
    return BotFill.objects.filter(bot=bot).select_related("order").order_by("executed_at", "id")


def bot_trades(*, bot: Bot, marks: dict[str, Decimal] | None = None) -> list[RoundTrip]:
    """The bot's FIFO round trips from its fills (closed first, then open lots)."""
    return round_trips((_engine_fill(fill) for fill in bot_fill_list(bot=bot)), marks)


def bot_order_list(*, bot: Bot, open_only: bool = False) -> QuerySet[BotOrder]:
    orders = BotOrder.objects.filter(bot=bot).order_by("-created_at", "-id")
    if open_only:
        orders = orders.filter(status__in=BotOrder.OPEN_STATUSES)
    return orders


def bot_log_list(*, bot: Bot) -> QuerySet[BotLog]:
    return BotLog.objects.filter(bot=bot).order_by("-created_at", "-id")


def bot_equity_curve(*, run: BotRun | None) -> list[dict[str, Any]]:
    """The run's equity snapshots as chart points (seconds since the epoch, float)."""
    if run is None:
        return []
    rows = EquitySnapshot.objects.filter(run=run).order_by("time").values_list("time", "equity")
    return [{"time": int(time.timestamp()), "value": float(equity)} for time, equity in rows]


def bot_card(
    *, bot: Bot, run: BotRun | None, account_risk: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What the live card shows: status, equity, P&L since the start, last tick.
    `account_risk`: the account's risk state when the caller has it (a batch of cards)."""
    pnl = None
    pnl_pct = None
    if run is not None and run.equity_start is not None and run.equity_last is not None:
        pnl = run.equity_last - run.equity_start
        if run.equity_start:
            pnl_pct = pnl / run.equity_start
    status = "NEW" if run is None else run.status
    return {
        "bot": bot,
        "run": run,
        "status": status,
        "status_label": "Not started" if run is None else run.get_status_display(),
        "paused": run is not None and run.paused_at is not None and run.is_active,
        "active": run is not None and run.is_active,
        "equity": None if run is None else run.equity_last,
        "pnl": pnl,
        "pnl_pct": pnl_pct,
        "realized_pnl": None if run is None else run.realized_pnl,
        "risk_stage": _risk_stage(bot, run, account_risk),
    }


def _risk_stage(bot: Bot, run: BotRun | None, account_risk: dict[str, Any] | None) -> str:
    """The stricter of the run's own stage and its account's (shared by its bots)."""
    if account_risk is None:
        rows = AccountRisk.objects.filter(account_id=bot.account_id)
        account_risk = rows.values_list("state", flat=True).first()
    states = [(run.risk_state if run else None) or {}, account_risk or {}]
    stages = [Stage(state.get("stage", Stage.ACTIVE)) for state in states]
    return max(stages, key=lambda stage: stage.severity).value
