"""Checks of a backtest request, before anything is written: each problem names its field."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.http import Http404
from django.utils import timezone

from apps.backtests.models import BacktestPair, BacktestTask
from apps.backtests.services.pair_config import (
    pair_execution_config,
    version_engine_spec,
    version_is_script,
    version_script_check,
)
from apps.common.errors import ApplicationError
from apps.engine.simulator import SimulationConfigError
from apps.market.selectors import candle_series_find
from apps.market.services import series_key_clean
from apps.strategies.selectors import strategy_version_get_for_user

MAX_PAIRS = 20
MAX_NAME = 120
# The simulator names its settings after ExecutionConfig; pairs name them after columns.
CONFIG_FIELD_NAMES = {"cash": "initial_capital", "fee": "taker_fee"}


class BacktestInvalid(ApplicationError):
    """Input refused before anything was written; `problems` lists (field path, message)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        path, message = problems[0]
        super().__init__(message, field=path)


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
    if market_type == BacktestTask.MarketType.FUTURES:
        problems.append(("market_type", "futures backtests are not available yet; choose spot"))
    elif market_type not in BacktestTask.MarketType.values:
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


def pair_problems(
    *, owner: Any, index: int, data: PairInput, exchange: str, start: datetime, end: datetime
) -> tuple[CheckedPair | None, list[tuple[str, str]]]:
    prefix = f"pairs[{index}]."
    problems: list[tuple[str, str]] = []
    try:
        exchange_, symbol, timeframe = series_key_clean(
            exchange=exchange, symbol=data.symbol, timeframe=data.timeframe
        )
    except ApplicationError as exc:
        return None, [(prefix + (exc.field or "symbol"), exc.message)]
    label = f"{symbol} {timeframe.code}"
    if data.order_type == BacktestPair.OrderType.LIMIT:
        problems.append(
            (prefix + "order_type", "limit orders are not available in backtests yet; use market")
        )
    elif data.order_type != BacktestPair.OrderType.MARKET:
        problems.append((prefix + "order_type", "choose market"))
    if data.sizing not in BacktestPair.Sizing.values:
        problems.append((prefix + "sizing", f"choose one of {', '.join(BacktestPair.Sizing)}"))
    if not Decimal(0) <= data.maker_fee < Decimal("0.1"):
        problems.append((prefix + "maker_fee", "maker_fee must be a fraction between 0 and 0.1"))
    version = None
    try:
        version = strategy_version_get_for_user(user=owner, version_id=data.strategy_version_id)
        if version_is_script(version):
            version_script_check(version)
        else:
            version_engine_spec(version)
    except Http404:
        problems.append(
            (prefix + "strategy_version", f"strategy version {data.strategy_version_id} not found")
        )
    except ApplicationError as exc:
        problems.append((prefix + "strategy_version", exc.message))
    try:
        pair_execution_config(data).validate()
    except SimulationConfigError as exc:
        name = str(exc).split(" ", 1)[0]
        problems.append((prefix + CONFIG_FIELD_NAMES.get(name, name), str(exc)))
    series = candle_series_find(exchange=exchange_, symbol=symbol, timeframe=timeframe.code)
    stored = (
        0
        if series is None
        else series.candles.filter(open_time__gte=start, open_time__lt=end)[:2].count()
    )
    if stored < 2:
        problems.append(
            (
                prefix + "symbol",
                f"no candles for {label} on {exchange_} between {start:%Y-%m-%d %H:%M} and "
                f"{end:%Y-%m-%d %H:%M} UTC; import them on the Market data page first",
            )
        )
    checked = CheckedPair(data=data, symbol=symbol, timeframe=timeframe.code, version=version)
    return checked, problems
