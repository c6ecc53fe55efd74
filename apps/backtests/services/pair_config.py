"""From a pair's stored settings and strategy version to what the engine runs."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from apps.backtests.models import BacktestPair
from apps.common.errors import ApplicationError
from apps.engine.backtest import StrategySpec, StrategySpecError
from apps.engine.conditions import ConditionError
from apps.engine.sandbox import SandboxError, compile_strategy
from apps.engine.simulator import ExecutionConfig
from apps.strategies.models import StrategyKind

if TYPE_CHECKING:
    from apps.backtests.services.validate import PairInput


def _fraction(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def pair_execution_config(pair: PairInput | BacktestPair) -> ExecutionConfig:
    """The simulator settings of one pair: market orders pay the taker fee."""
    fee = pair.taker_fee if pair.order_type == BacktestPair.OrderType.MARKET else pair.maker_fee
    return ExecutionConfig(
        cash=float(pair.initial_capital),
        fee=float(fee),
        slippage=float(pair.slippage),
        stop_loss=_fraction(pair.stop_loss),
        take_profit=_fraction(pair.take_profit),
        trailing_stop=_fraction(pair.trailing_stop),
        sizing=pair.sizing,  # type: ignore[arg-type]
        size_value=float(pair.size_value),
        max_trades_per_day=pair.max_trades_per_day,
        max_drawdown_stop=_fraction(pair.max_drawdown_stop),
    )


def version_is_script(version: Any) -> bool:
    return bool(version.kind == StrategyKind.SCRIPT)


def version_script_check(version: Any) -> None:
    """A script version's source compiles in the sandbox's policy (it is not run here)."""
    try:
        compile_strategy(version.script_source)
    except SandboxError as exc:
        raise ApplicationError(
            f"{version} cannot be backtested: {exc}", field="strategy_version"
        ) from exc


def version_engine_spec(version: Any) -> StrategySpec:
    """The version's condition spec; scripts and event-path templates cannot run here yet."""
    try:
        return version.engine_spec()
    except (StrategySpecError, ConditionError, ValueError) as exc:
        raise ApplicationError(
            f"{version} cannot be backtested yet: {exc}", field="strategy_version"
        ) from exc
