"""Creating a bot and changing its settings: every input is checked before anything is
written, each refusal names its field (InputInvalid), and the per-user bot ceiling is a
quota error of its own (the API answers 429 for it).

A strategy version or an account of another user is "not found", exactly as a missing
one, so the error never tells a stranger's ids apart from unused ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.bots import engine_state
from apps.bots.models import Bot, BotRun, RiskProfileName
from apps.common.errors import ApplicationError, InputInvalid
from apps.common.services import model_update
from apps.engine.decide import build_strategy
from apps.engine.risk import RiskConfigError, risk_profile
from apps.engine.timeframes import TimeframeError, parse_timeframe
from apps.exchanges.models import ExchangeAccount
from apps.market.models import Candle, CandleSeries
from apps.market.services import SYMBOL_RE
from apps.strategies.models import StrategyKind, StrategyVersion

MAX_SYMBOLS = 10
# A replay without a start date begins this many candles before the last stored one.
REPLAY_DEFAULT_CANDLES = 720
MAX_SECONDS_PER_CANDLE = Decimal(3600)
# Risk settings the bot has its own fields for; the rest live in risk_overrides.
LIMIT_FIELDS = ("leverage", "max_trades_per_day")
SETTINGS = (
    "name",
    "kind",
    "strategy_version",
    "account",
    "symbols",
    "timeframe",
    "params",
    "risk_profile",
    "risk_overrides",
    "capital_limit",
    "leverage",
    "max_trades_per_day",
    "assume_position",
    "close_on_stop",
    "cooldown_after_losses",
    "cooldown_bars",
    "feed",
    "market_exchange",
    "replay_start",
    "replay_seconds_per_candle",
)
RELATIONS = ("strategy_version", "account")


class BotQuotaExceeded(ApplicationError):
    """The owner already has as many bots as their quota allows (HTTP 429 in the API)."""


@dataclass
class _Checker:
    owner: User
    problems: list[tuple[str, str]]

    def refuse(self, field: str, message: str) -> None:
        self.problems.append((field, message))


def _version(
    check: _Checker, *, kind: str, feed: str, version_id: int | None
) -> StrategyVersion | None:
    if kind == Bot.Kind.SIGNAL:
        return None
    if version_id is None:
        check.refuse("strategy_version_id", "Choose a strategy version for the bot to run.")
        return None
    version = (
        StrategyVersion.objects.filter(pk=version_id, strategy__owner=check.owner)
        .select_related("strategy")
        .first()
    )
    if version is None:
        check.refuse("strategy_version_id", f"Strategy version {version_id} not found.")
    elif version.kind == StrategyKind.RECORDED and feed != Bot.Feed.REPLAY:
        check.refuse(
            "strategy_version_id",
            "Recorded alerts are in the past: they replay over stored candles (a replay "
            "feed) or in a backtest. A signal bot takes live alerts.",
        )
        return None
    return version


def _runnable(
    check: _Checker, version: StrategyVersion | None, params: Any, symbols: list[str]
) -> None:
    """The bot engine must accept the version on the bot's symbols, and then with the bot's
    parameters, before anything is written: otherwise the bot would only fail on its first
    tick."""
    if version is None or not isinstance(params, dict):
        return
    for field, overrides in (("strategy_version_id", {}), ("params", params)):
        try:
            bot = Bot(strategy_version=version, params=overrides, symbols=symbols)
            spec = engine_state.bot_strategy_spec(bot)
            # A script (None) runs in the sandbox, checked by its version.
            specs = spec.values() if isinstance(spec, engine_state.SymbolSpecs) else [spec]
            for one in specs if spec is not None else ():
                build_strategy(one)
        except (ValueError, TypeError, KeyError) as exc:
            if getattr(exc, "field", None) == "symbol":
                check.refuse("symbols", str(exc))
            elif field == "params":
                check.refuse("params", f"The strategy refuses these parameters: {exc}.")
            else:
                check.refuse(
                    "strategy_version_id",
                    f"Strategy version {version.pk} ({version}) cannot run as a bot: {exc}.",
                )
            return


def _account(check: _Checker, *, kind: str, account_id: int | None) -> ExchangeAccount | None:
    account = (
        None
        if account_id is None
        else ExchangeAccount.objects.filter(pk=account_id, owner=check.owner)
        .only("id", "owner_id", "exchange", "label", "mode")
        .first()
    )
    if account is None:
        check.refuse("account_id", f"Exchange account {account_id} not found.")
    elif kind == Bot.Kind.SIGNAL and account.mode == ExchangeAccount.Mode.TESTNET:
        return account  # alerts trade the exchange's testnet (apps/bots/exchange_orders.py)
    elif not account.is_paper:
        check.refuse(
            "account_id",
            "Strategy bots trade paper accounts, signal bots paper or testnet accounts; "
            "live trading comes in a later release.",
        )
        return None
    return account


def _symbols(check: _Checker, raw: Any) -> list[str]:
    if isinstance(raw, str):
        raw = raw.replace(",", " ").split()
    if not isinstance(raw, list | tuple) or not raw:
        check.refuse("symbols", "Give at least one symbol, e.g. BTC/USDT.")
        return []
    symbols = list(dict.fromkeys(str(symbol).strip().upper() for symbol in raw))
    if len(symbols) > MAX_SYMBOLS:
        check.refuse("symbols", f"A bot trades at most {MAX_SYMBOLS} symbols.")
    for symbol in symbols:
        if not SYMBOL_RE.match(symbol):
            check.refuse("symbols", f"“{symbol}” is not a BASE/QUOTE symbol, e.g. BTC/USDT.")
    quotes = {symbol.partition("/")[2].partition(":")[0] for symbol in symbols}
    if len(quotes) > 1:
        # The bot's equity and sizing are in one currency (execution.quote_of).
        check.refuse("symbols", "All symbols must share one quote currency, e.g. all /USDT.")
    return symbols


def _timeframe(check: _Checker, timeframe: str) -> str:
    try:
        return str(parse_timeframe(timeframe.strip()))
    except TimeframeError as exc:
        check.refuse("timeframe", str(exc))
        return timeframe


def _replay_symbols(
    check: _Checker,
    *,
    exchange: str,
    symbols: list[str],
    timeframe: str,
    start: datetime | None,
) -> datetime | None:
    """A replay needs stored candles of each symbol (from `start`, when given). Without a
    start, it begins REPLAY_DEFAULT_CANDLES before the first symbol's last candle."""
    for symbol in symbols:
        series = CandleSeries.objects.filter(
            exchange=exchange, symbol=symbol, timeframe=timeframe
        ).first()
        if series is None:
            check.refuse(
                "symbols",
                f"Unknown symbol {symbol}: no stored {timeframe} candles on {exchange}. "
                "Download them on the Market data page first.",
            )
        elif start is not None and not series.candles.filter(open_time__gte=start).exists():
            check.refuse(
                "replay_start", f"No stored {symbol} {timeframe} candles from {start:%Y-%m-%d}."
            )
    if start is None and symbols and not check.problems:
        start = (
            Candle.objects.filter(
                series__exchange=exchange, series__symbol=symbols[0], series__timeframe=timeframe
            )
            .order_by("-open_time")
            .values_list("open_time", flat=True)[
                REPLAY_DEFAULT_CANDLES - 1 : REPLAY_DEFAULT_CANDLES
            ]
            .first()
        )
    return start


def _plain(value: Any) -> Any:
    """A number as the JSON column keeps it: a plain decimal string ("0.03")."""
    if isinstance(value, Decimal | float) and not isinstance(value, bool):
        return format(Decimal(str(value)).normalize(), "f")
    return value


def _risk(check: _Checker, values: dict[str, Any]) -> dict[str, Any]:
    overrides = values["risk_overrides"]
    if not isinstance(overrides, dict):
        check.refuse("risk_overrides", "Risk overrides must be an object of setting: value.")
        return {}
    limits: dict[str, Any] = {"leverage": values["leverage"]}
    if values["max_trades_per_day"] is not None:
        limits["max_trades_per_day"] = values["max_trades_per_day"]
    for name in LIMIT_FIELDS:
        if name in overrides:
            check.refuse(f"risk_overrides.{name}", f"Set {name} with its own field.")
            return overrides
    overrides = {name: _plain(value) for name, value in overrides.items()}
    try:
        risk_profile(values["risk_profile"], **overrides, **limits)
    except RiskConfigError as exc:
        field = exc.field or "risk_overrides"
        if field not in ("risk_profile", *LIMIT_FIELDS):
            field = f"risk_overrides.{field}"
        check.refuse(field, f"{str(exc)[0].upper()}{str(exc)[1:]}.")
    return overrides


def _decimal(check: _Checker, field: str, raw: Any, *, minimum: Decimal) -> Decimal | None:
    if raw is None or raw == "":
        return None
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < minimum:
        check.refuse(field, f"{field.replace('_', ' ').capitalize()} must be {minimum} or more.")
    return value


def _counts(check: _Checker, values: dict[str, Any]) -> None:
    for field in ("max_trades_per_day", "cooldown_after_losses", "cooldown_bars"):
        value = values[field]
        if value is None and field != "cooldown_bars":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            check.refuse(field, f"{field.replace('_', ' ').capitalize()} must be a whole number.")


def _cleaned(owner: User, values: dict[str, Any], *, bot: Bot | None = None) -> dict[str, Any]:
    """The settings as the model stores them, or InputInvalid listing every problem."""
    check = _Checker(owner=owner, problems=[])
    data = dict(values)
    data["name"] = str(values["name"]).strip()
    if not data["name"]:
        check.refuse("name", "Give the bot a name.")
    elif len(data["name"]) > 100:
        check.refuse("name", "Keep the name to 100 characters.")
    elif Bot.objects.filter(owner=owner, name=data["name"]).exclude(pk=getattr(bot, "pk", None)):
        check.refuse("name", f"You already have a bot named “{data['name']}”.")
    if data["kind"] not in Bot.Kind.values:
        check.refuse("kind", f"Unknown kind “{data['kind']}”: use strategy or signal.")
    if data["risk_profile"] not in RiskProfileName.values:
        check.refuse("risk_profile", "Choose conservative, balanced or aggressive.")
    if data["feed"] not in Bot.Feed.values:
        check.refuse("feed", "Choose live or replay.")
    if not isinstance(data["params"] or {}, dict):
        check.refuse("params", "Parameters must be an object of name: value.")
    data["params"] = data["params"] or {}
    data["strategy_version"] = _version(
        check, kind=data["kind"], feed=data["feed"], version_id=data.pop("strategy_version_id")
    )
    data["account"] = _account(check, kind=data["kind"], account_id=data.pop("account_id"))
    data["symbols"] = _symbols(check, data["symbols"])
    _runnable(check, data["strategy_version"], data["params"], data["symbols"])
    data["timeframe"] = _timeframe(check, str(data["timeframe"]))
    data["capital_limit"] = _decimal(
        check, "capital_limit", data["capital_limit"], minimum=Decimal(0)
    )
    data["leverage"] = _decimal(check, "leverage", data["leverage"], minimum=Decimal(1)) or 1
    seconds = _decimal(
        check,
        "replay_seconds_per_candle",
        data["replay_seconds_per_candle"],
        minimum=Decimal("0.1"),
    )
    if seconds is not None and seconds > MAX_SECONDS_PER_CANDLE:
        check.refuse("replay_seconds_per_candle", "Replay at most one candle an hour.")
    data["replay_seconds_per_candle"] = seconds or Decimal(2)
    _counts(check, data)
    data["market_exchange"] = str(data["market_exchange"] or "").strip().lower()
    if data["feed"] == Bot.Feed.REPLAY and data["account"] is not None:
        data["market_exchange"] = data["market_exchange"] or data["account"].exchange
        data["replay_start"] = _replay_symbols(
            check,
            exchange=data["market_exchange"],
            symbols=data["symbols"],
            timeframe=data["timeframe"],
            start=data["replay_start"],
        )
    if not check.problems:
        data["risk_overrides"] = _risk(check, data)
    if check.problems:
        raise InputInvalid(check.problems)
    return data


def _check_quota(owner: User) -> None:
    # Lock the owner so two concurrent creates cannot both pass the count.
    limit = User.objects.select_for_update().values_list("max_bots", flat=True).get(pk=owner.pk)
    if Bot.objects.filter(owner=owner, archived_at__isnull=True).count() >= limit:
        raise BotQuotaExceeded(
            f"You have reached your limit of {limit} bots. "
            "Archive one, or ask an operator to raise the limit."
        )


def _audit_data(bot: Bot) -> dict[str, Any]:
    return {
        "bot_id": bot.pk,
        "name": bot.name,
        "kind": bot.kind,
        "strategy_version_id": bot.strategy_version_id,
        "account_id": bot.account_id,
        "symbols": bot.symbols,
        "timeframe": bot.timeframe,
        "risk_profile": bot.risk_profile,
        "risk_overrides": bot.risk_overrides,
        "leverage": str(bot.leverage),
        "capital_limit": None if bot.capital_limit is None else str(bot.capital_limit),
        "feed": bot.feed,
    }


@transaction.atomic
def bot_create(
    *,
    owner: User,
    name: str,
    kind: str = Bot.Kind.STRATEGY,
    strategy_version_id: int | None,
    account_id: int | None,
    symbols: list[str],
    timeframe: str = "1h",
    params: dict[str, Any] | None = None,
    risk_profile: str = RiskProfileName.CONSERVATIVE,
    risk_overrides: dict[str, Any] | None = None,
    capital_limit: Decimal | None = None,
    leverage: Decimal = Decimal(1),
    max_trades_per_day: int | None = None,
    assume_position: bool = False,
    close_on_stop: bool = True,
    cooldown_after_losses: int | None = None,
    cooldown_bars: int = 0,
    feed: str = Bot.Feed.LIVE,
    market_exchange: str = "",
    replay_start: datetime | None = None,
    replay_seconds_per_candle: Decimal = Decimal(2),
) -> Bot:
    """A new bot (not started) on one of the owner's paper accounts."""
    values = {key: value for key, value in locals().items() if key != "owner"}
    values["risk_overrides"] = risk_overrides or {}
    data = _cleaned(owner, values)
    _check_quota(owner)
    bot = Bot(owner=owner, **data)
    bot.full_clean()
    bot.save(force_insert=True)
    audit_record(
        event_type="bot.created", actor=owner, owner=owner, target=bot, data=_audit_data(bot)
    )
    return bot


@transaction.atomic
def bot_update(*, bot: Bot, acting_user: User, **changes: Any) -> Bot:
    """Change a stopped bot's settings; `changes` take bot_create's keyword names."""
    allowed = {*SETTINGS, "strategy_version_id", "account_id"} - set(RELATIONS)
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise InputInvalid([(name, f"“{name}” is not a bot setting.") for name in unknown])
    if BotRun.objects.filter(bot=bot, status__in=BotRun.ACTIVE).exists():
        raise ApplicationError("Stop the bot before changing its settings.")
    values = {name: getattr(bot, name) for name in SETTINGS if name not in RELATIONS}
    values.update(strategy_version_id=bot.strategy_version_id, account_id=bot.account_id)
    values.update(changes)
    data = _cleaned(bot.owner, values, bot=bot)
    before = _audit_data(bot)
    if model_update(instance=bot, fields=list(SETTINGS), data=data):
        audit_record(
            event_type="bot.updated",
            actor=acting_user,
            owner=bot.owner,
            target=bot,
            data={"before": before, "after": _audit_data(bot)},
        )
    return bot
