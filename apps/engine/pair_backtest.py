"""One pair's backtest, whatever the strategy and market: the path is chosen here.

- a condition strategy on spot with market orders takes the vectorised simulator;
- grid and DCA templates, and condition strategies with limit orders, take the event path
  (limit-order semantics: strategies/conditions.py);
- futures take the futures book (leverage, funding, liquidation: futures.py), condition
  strategies only, long or short, with market or limit orders;
- scripts are not handled here: they run in the sandbox (script_backtest.py).
Every path returns the same `BacktestReport`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from apps.engine.backtest import (
    BacktestReport,
    Market,
    StrategySpec,
    backtest_report,
    run_backtest,
)
from apps.engine.candles import CandleArrays
from apps.engine.decide import build_strategy
from apps.engine.event_book import EventConfig
from apps.engine.events import run_events
from apps.engine.futures import FuturesConfig, run_futures
from apps.engine.simulator import SimulationConfigError
from apps.engine.strategies.base import EventSpec
from apps.engine.strategies.conditions import ConditionStrategy, OrderPlan

OrderStyle = Literal["market", "limit"]


@dataclass(frozen=True)
class PairSettings:
    execution: EventConfig
    market: Market = "spot"
    order_type: OrderStyle = "market"
    # Limit orders rest at the signal bar's close moved by this fraction in the trader's
    # favour (a buy below, a sell above).
    limit_offset: float = 0.0
    # Used when market is "futures" (the defaults when None); validated whenever given.
    futures: FuturesConfig | None = None

    def validate(self) -> None:
        self.execution.validate()
        if self.market not in ("spot", "futures"):
            raise SimulationConfigError("market must be 'spot' or 'futures'")
        if self.order_type not in ("market", "limit"):
            raise SimulationConfigError("order_type must be 'market' or 'limit'")
        if not 0 <= self.limit_offset < 0.5:
            raise SimulationConfigError("limit_offset must be a fraction between 0 and 0.5")
        if self.futures is not None:
            self.futures.validate()


def run_pair_backtest(
    spec: StrategySpec | EventSpec, candles: CandleArrays, settings: PairSettings
) -> BacktestReport:
    settings.validate()
    cash = settings.execution.execution.cash
    if settings.market == "futures":
        if not isinstance(spec, StrategySpec):
            raise SimulationConfigError(
                "market 'futures' runs condition strategies; grid and DCA run on spot only"
            )
        futures = settings.futures or FuturesConfig()
        plan = OrderPlan(futures.direction, settings.order_type, settings.limit_offset)
        strategy = ConditionStrategy(spec, plan)
        result = run_futures(strategy, candles, settings.execution, futures)
        return backtest_report(candles, result, cash, market="futures")
    if isinstance(spec, StrategySpec) and settings.order_type == "market":
        return run_backtest(spec, candles, settings.execution.execution)
    if isinstance(spec, StrategySpec):
        plan = OrderPlan(order_type="limit", limit_offset=settings.limit_offset)
        result = run_events(ConditionStrategy(spec, plan), candles, settings.execution)
    else:
        result = run_events(build_strategy(spec), candles, settings.execution)
    return backtest_report(candles, result, cash)
