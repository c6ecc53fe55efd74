"""Checks of a backtest request, before anything is written: each problem names its field."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.http import Http404
from django.utils import timezone

from apps.backtests.models import BacktestPair, BacktestTask, Side
from apps.backtests.services.pair_config import (
    pair_settings,
    version_engine_spec,
    version_is_script,
    version_places_own_orders,
    version_script_check,
)
from apps.common.errors import ApplicationError, InputInvalid
from apps.engine.simulator import SimulationConfigError
from apps.market.selectors import candle_series_find
from apps.market.services import series_key_clean
from apps.strategies.selectors import strategy_version_get_for_user

MAX_PAIRS = 20
MAX_NAME = 120
# The simulator names its settings after ExecutionConfig; pairs name them after columns
# ("fee" is the taker fee for market orders and the maker fee for limit orders).
CONFIG_FIELD_NAMES = {"cash": "initial_capital"}


class BacktestInvalid(InputInvalid):
    """Input refused before anything was written; `problems` lists (field path, message)."""


@dataclass(frozen=True)
class PairInput:
    symbol: str
    timeframe: str
    strategy_version_id: int
    initial_capital: Decimal = Decimal(10_000)
    order_type: str = BacktestPair.OrderType.MARKET
    maker_fee: Decimal = Decimal("0.001")
    taker_fee: Decimal = Decimal("0.001")
    slippage: Decimal = Decimal(0)
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    trailing_stop: Decimal | None = None
    sizing: str = BacktestPair.Sizing.ALL_IN
    size_value: Decimal = Decimal(1)
    max_trades_per_day: int | None = None
    max_drawdown_stop: Decimal | None = None
    limit_offset: Decimal = Decimal(0)
    leverage: Decimal = Decimal(1)
    direction: str = Side.LONG
    funding_rate: Decimal = Decimal("0.0001")
    maintenance_margin: Decimal = Decimal("0.005")


@dataclass
class CheckedPair:
    """A pair that passed validation, ready to write."""

    data: PairInput
    symbol: str
    timeframe: str
    version: Any


def task_problems(
    *, name: str, exchange: str, market_type: str, start: datetime, end: datetime
) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if not name.strip():
        problems.append(("name", "give the backtest a name"))
    elif len(name.strip()) > MAX_NAME:
        problems.append(("name", f"at most {MAX_NAME} characters"))
    if market_type not in BacktestTask.MarketType.values:
        problems.append(("market_type", f"choose one of {', '.join(BacktestTask.MarketType)}"))
    if start is None or end is None or timezone.is_naive(start) or timezone.is_naive(end):
        problems.append(("start", "give the start and end as UTC date-times"))
    elif end <= start:
        problems.append(("end", "must be after the start"))
    try:
        series_key_clean(exchange=exchange, symbol="BTC/USDT", timeframe="1h")
    except ApplicationError as exc:
        problems.append(("exchange", exc.message))
    return problems


def _version_problems(
    *, owner: Any, data: PairInput, symbol: str, market_type: str
) -> tuple[Any, list[tuple[str, str]]]:
    """The strategy version exists, is the owner's, can run on `symbol` (a recorded-alerts
    version only on the symbols it holds alerts for), and suits the pair's market and
    order type. Field names are relative to the pair."""
    try:
        version = strategy_version_get_for_user(user=owner, version_id=data.strategy_version_id)
    except Http404:
        missing = f"strategy version {data.strategy_version_id} not found"
        return None, [("strategy_version", missing)]
    problems: list[tuple[str, str]] = []
    try:
        if version_is_script(version):
            version_script_check(version)
        else:
            version_engine_spec(version, symbol=symbol)
    except ApplicationError as exc:
        problems.append((exc.field or "strategy_version", exc.message))
    own_orders = version_places_own_orders(version)
    if own_orders and market_type == BacktestTask.MarketType.FUTURES:
        problems.append(
            (
                "strategy_version",
                f"{version} places its own orders and backtests on spot only; futures run "
                "condition and signal-template strategies",
            )
        )
    if own_orders and data.order_type == BacktestPair.OrderType.LIMIT:
        problems.append(
            (
                "order_type",
                f"{version} places its own orders (its limit orders pay the maker fee); "
                "choose market",
            )
        )
    return version, problems


def _settings_problems(*, data: PairInput, market_type: str) -> list[tuple[str, str]]:
    """Order type, sizing, and every rate and limit, as the engine checks them."""
    problems: list[tuple[str, str]] = []
    if data.order_type not in BacktestPair.OrderType.values:
        problems.append(("order_type", f"choose one of {', '.join(BacktestPair.OrderType)}"))
    if data.sizing not in BacktestPair.Sizing.values:
        problems.append(("sizing", f"choose one of {', '.join(BacktestPair.Sizing)}"))
    if market_type == BacktestTask.MarketType.SPOT:
        if data.leverage != 1:
            problems.append(
                ("leverage", "leverage above 1 needs a futures market; spot trades your own cash")
            )
        if data.direction != Side.LONG:
            problems.append(("direction", "spot backtests are long only; choose long"))
    if problems:
        return problems
    try:
        pair_settings(data, market_type=market_type).validate()
    except SimulationConfigError as exc:
        name = str(exc).split(" ", 1)[0]
        if name == "fee":
            name = "taker_fee" if data.order_type == BacktestPair.OrderType.MARKET else "maker_fee"
        problems.append((CONFIG_FIELD_NAMES.get(name, name), str(exc)))
    return problems


def _candle_problems(
    *, exchange: str, symbol: str, timeframe: str, start: datetime, end: datetime
) -> list[tuple[str, str]]:
    series = candle_series_find(exchange=exchange, symbol=symbol, timeframe=timeframe)
    stored = (
        0
        if series is None
        else series.candles.filter(open_time__gte=start, open_time__lt=end)[:2].count()
    )
    if stored >= 2:
        return []
    return [
        (
            "symbol",
            f"no candles for {symbol} {timeframe} on {exchange} between "
            f"{start:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M} UTC; "
            "import them on the Market data page first",
        )
    ]


def pair_problems(
    *,
    owner: Any,
    index: int,
    data: PairInput,
    exchange: str,
    market_type: str,
    start: datetime,
    end: datetime,
) -> tuple[CheckedPair | None, list[tuple[str, str]]]:
    """Check pair `index`; problems carry paths such as `pairs[1].leverage`."""
    prefix = f"pairs[{index}]."
    try:
        exchange_, symbol, timeframe = series_key_clean(
            exchange=exchange, symbol=data.symbol, timeframe=data.timeframe
        )
    except ApplicationError as exc:
        return None, [(prefix + (exc.field or "symbol"), exc.message)]
    version, problems = _version_problems(
        owner=owner, data=data, symbol=symbol, market_type=market_type
    )
    problems += _settings_problems(data=data, market_type=market_type)
    problems += _candle_problems(
        exchange=exchange_, symbol=symbol, timeframe=timeframe.code, start=start, end=end
    )
    checked = CheckedPair(data=data, symbol=symbol, timeframe=timeframe.code, version=version)
    return checked, [(prefix + name, message) for name, message in problems]
