"""From a pair's stored settings and strategy version to what the engine runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apps.backtests.execution import execution_config
from apps.backtests.models import BacktestPair, BacktestTask
from apps.common.errors import ApplicationError
from apps.engine.backtest import StrategySpec, StrategySpecError
from apps.engine.conditions import ConditionError
from apps.engine.decide import build_strategy
from apps.engine.event_book import EventConfig
from apps.engine.futures import FuturesConfig
from apps.engine.pair_backtest import PairSettings
from apps.engine.sandbox import SandboxError, compile_strategy
from apps.engine.simulator import ExecutionConfig
from apps.engine.strategies.base import EventSpec
from apps.engine.templates import TEMPLATES
from apps.strategies.models import StrategyKind

if TYPE_CHECKING:
    from apps.backtests.services.validate import PairInput


def pair_execution_config(pair: PairInput | BacktestPair) -> ExecutionConfig:
    """The simulator settings of one pair: market orders pay the taker fee."""
    fee = pair.taker_fee if pair.order_type == BacktestPair.OrderType.MARKET else pair.maker_fee
    return execution_config(pair, fee=fee)


def pair_event_config(pair: PairInput | BacktestPair) -> EventConfig:
    """The event path's settings: the simulator's plus separate maker and taker fees."""
    return EventConfig(
        pair_execution_config(pair),
        maker_fee=float(pair.maker_fee),
        taker_fee=float(pair.taker_fee),
    )


def pair_settings(pair: PairInput | BacktestPair, *, market_type: str) -> PairSettings:
    """Everything `run_pair_backtest` needs besides the strategy and the candles."""
    futures = None
    if market_type == BacktestTask.MarketType.FUTURES:
        futures = FuturesConfig(
            leverage=float(pair.leverage),
            direction=pair.direction,  # type: ignore[arg-type]
            funding_rate=float(pair.funding_rate),
            maintenance_margin=float(pair.maintenance_margin),
        )
    return PairSettings(
        execution=pair_event_config(pair),
        market=market_type,  # type: ignore[arg-type]
        order_type=pair.order_type,  # type: ignore[arg-type]
        limit_offset=float(pair.limit_offset),
        futures=futures,
    )


def version_is_script(version: Any) -> bool:
    return bool(version.kind == StrategyKind.SCRIPT)


def version_is_event_template(version: Any) -> bool:
    """Grid and DCA: templates that keep resting orders and place their own limit orders."""
    template = TEMPLATES.get(version.template) if version.kind == StrategyKind.TEMPLATE else None
    return template is not None and template.kind == "event"


def version_is_recorded(version: Any) -> bool:
    """A signal bot's recorded alerts (apps/strategies/recorded.py): per-symbol alerts that
    place their own market orders on spot."""
    return bool(version.kind == StrategyKind.RECORDED)


def version_places_own_orders(version: Any) -> bool:
    """Scripts, grid, DCA and recorded alerts place their own orders, on spot: the futures
    book and the limit-order rule serve condition strategies."""
    return (
        version_is_script(version)
        or version_is_event_template(version)
        or version_is_recorded(version)
    )


def version_script_check(version: Any) -> None:
    """A script version's source compiles in the sandbox's policy (it is not run here)."""
    try:
        compile_strategy(version.script_source)
    except SandboxError as exc:
        raise ApplicationError(
            f"{version} cannot be backtested: {exc}", field="strategy_version"
        ) from exc


def version_engine_spec(version: Any, *, symbol: str = "") -> StrategySpec | EventSpec:
    """What `run_pair_backtest` runs for a template, condition or recorded version on
    `symbol`: an `EventSpec` for grid, DCA and recorded alerts (`symbol`'s), a condition
    `StrategySpec` otherwise. All are checked here (an event spec by building its strategy,
    which validates the parameters or alerts); the error names the field at fault."""
    try:
        if version_is_event_template(version):
            spec = EventSpec(version.template, dict(version.params))
        else:
            spec = version.engine_spec(symbol=symbol)
        if isinstance(spec, EventSpec):
            build_strategy(spec)
        return spec  # type: ignore[no-any-return]
    except (StrategySpecError, ConditionError, ValueError) as exc:
        field = getattr(exc, "field", None) if version_is_recorded(version) else None
        raise ApplicationError(
            f"{version} cannot be backtested: {exc}", field=field or "strategy_version"
        ) from exc
