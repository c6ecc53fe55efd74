"""Drive a paper broker bar by bar the way a bot tick does: candle, decide, risk, place."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from apps.engine.brokers.paper import PaperBroker, PaperConfig
from apps.engine.candles import CandleArrays
from apps.engine.clock import FixedClock, bar_length
from apps.engine.decide import Balance, Position, StrategyState, step
from apps.engine.ledger import Adjustment, Ledger
from apps.engine.risk import AccountSnapshot, RiskLimits, RiskState, risk_check
from apps.engine.types import Candle, Fill, Instrument

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass
class Replay:
    broker: PaperBroker
    instrument: Instrument
    limits: RiskLimits
    fills: list[Fill] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)
    memory: Any = None


def new_replay(
    instrument: Instrument,
    config: PaperConfig,
    *,
    cash: Decimal = Decimal(10_000),
    limits: RiskLimits | None = None,
) -> Replay:
    ledger = Ledger(instrument.quote)
    ledger.adjust(Adjustment("initial", instrument.quote, cash, EPOCH))
    broker = PaperBroker(
        ledger=ledger,
        instruments={instrument.symbol: instrument},
        config=config,
        clock=FixedClock(EPOCH),
    )
    return Replay(broker, instrument, limits or RiskLimits.unlimited())


def tick(replay: Replay, spec: Any, candles: CandleArrays, t: int) -> None:
    """Bar t has closed: fill what it triggers, then decide on candles[:t+1] and place."""
    broker, symbol = replay.broker, replay.instrument.symbol
    candle = Candle.at(candles, t)
    replay.fills.extend(broker.on_candle(symbol, candle))
    clock = FixedClock(candle.time + bar_length(candles.time))
    broker.clock = clock
    holding = broker.ledger.holding(symbol)
    marks = {symbol: candle.close}
    equity = broker.ledger.equity(marks)
    state = StrategyState(
        spec,
        Position(float(holding.qty), float(holding.avg_price)),
        Balance(float(broker.ledger.balance(replay.instrument.quote)), float(equity)),
        memory=replay.memory or {},
    )
    decision = step(state, candles.head(t + 1), clock)
    replay.memory = decision.memory
    result = risk_check(
        decision.intents,
        instrument=replay.instrument,
        limits=replay.limits,
        state=RiskState(),
        account=AccountSnapshot(replay.instrument.quote, broker.balances(), marks),
        id_prefix=f"t{t}",
    )
    replay.rejections.extend(r.message for r in result.rejections)
    for request in result.requests:
        broker.place_order(request)


def run_replay(replay: Replay, spec: Any, candles: CandleArrays) -> Replay:
    for t in range(len(candles)):
        tick(replay, spec, candles, t)
    return replay
