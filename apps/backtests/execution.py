"""The execution settings a backtest pair and an optimisation share (same column names and
defaults), and their one conversion to the simulator's `ExecutionConfig`."""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from apps.engine.simulator import ExecutionConfig

EXECUTION_FIELDS = (
    "initial_capital",
    "taker_fee",
    "slippage",
    "sizing",
    "size_value",
    "stop_loss",
    "take_profit",
    "trailing_stop",
    "max_trades_per_day",
    "max_drawdown_stop",
)


class ExecutionSettings(Protocol):
    """The execution columns of `EXECUTION_FIELDS`."""

    initial_capital: Decimal
    taker_fee: Decimal
    slippage: Decimal
    stop_loss: Decimal | None
    take_profit: Decimal | None
    trailing_stop: Decimal | None
    sizing: str
    size_value: Decimal
    max_trades_per_day: int | None
    max_drawdown_stop: Decimal | None


def _fraction(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def execution_config(settings: ExecutionSettings, *, fee: Decimal | None = None) -> ExecutionConfig:
    """The simulator's settings; every fill pays `fee`, by default the taker fee (market
    orders; a limit-order pair passes its maker fee)."""
    return ExecutionConfig(
        cash=float(settings.initial_capital),
        fee=float(settings.taker_fee if fee is None else fee),
        slippage=float(settings.slippage),
        stop_loss=_fraction(settings.stop_loss),
        take_profit=_fraction(settings.take_profit),
        trailing_stop=_fraction(settings.trailing_stop),
        sizing=settings.sizing,  # type: ignore[arg-type]
        size_value=float(settings.size_value),
        max_trades_per_day=settings.max_trades_per_day,
        max_drawdown_stop=_fraction(settings.max_drawdown_stop),
    )
