"""The shapes `decide` works with: order intents, the strategy's view of its account,
and one bar's decision. Frozen dataclasses of plain floats, strings and tuples.

Floats are fine inside backtests (DESIGN.md §5). At the bot/broker boundary every number
crosses as `Decimal(str(x))`: `OrderIntent.decimals()` does that, and because Python's
`str(float)` is the shortest round-tripping form, 0.1 becomes Decimal("0.1"), not the
binary expansion.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, Protocol

from apps.engine.candles import CandleArrays, FloatArray
from apps.engine.clock import Clock

Side = Literal["buy", "sell"]
OrderType = Literal["market", "limit"]
Action = Literal["place", "cancel"]
# Why a sell happened; it becomes the trade's exit_reason (the simulator's vocabulary).
IntentReason = Literal["signal", "take_profit", "stop_loss", "trailing_stop", "max_drawdown"]
MAX_TAG = 64


class IntentError(ValueError):
    """An order intent is malformed; the message names the field."""


def _positive(name: str, value: float | None, at_most_one: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise IntentError(f"{name} must be a number")
    if not math.isfinite(value) or value <= 0:
        raise IntentError(f"{name} must be a positive finite number, got {value!r}")
    if at_most_one and value > 1:
        raise IntentError(f"{name} must be at most 1, got {value!r}")


@dataclass(frozen=True)
class OrderIntent:
    """One order a strategy wants, or the cancel of one of its resting orders.

    Size semantics (at most one of size / fraction / amount):
    - `size`: base units (BTC);
    - `fraction`: a buy spends this fraction of the cash at fill time; a sell sells this
      fraction of the position (or of the lots named by `lot`);
    - `amount`: quote currency (USDT); a buy spends it fee included, a sell sells units
      worth it at the fill price;
    - none: a buy is sized by the execution config's sizing rule (all-in, percent, fixed,
      risk); a sell sells everything (or all of the lots named by `lot`).
    A buy never spends more cash than held and a sell never sells more than held: the
    book caps both. Market orders fill at the next bar's open; limit orders rest until a
    bar trades through `limit_price`. `tag` is the client tag: it names the order (cancels
    refer to it) and, on a buy, the lot the fill opens. `lot` restricts a sell to lots
    with that tag. A cancel (`action="cancel"`) removes resting orders with `tag`.
    """

    side: Side
    type: OrderType = "market"
    size: float | None = None
    fraction: float | None = None
    amount: float | None = None
    limit_price: float | None = None
    reason: IntentReason = "signal"
    tag: str = ""
    lot: str | None = None
    action: Action = "place"

    def __post_init__(self) -> None:
        if self.side not in ("buy", "sell"):
            raise IntentError(f"side must be 'buy' or 'sell', got {self.side!r}")
        if self.type not in ("market", "limit"):
            raise IntentError(f"type must be 'market' or 'limit', got {self.type!r}")
        if self.action not in ("place", "cancel"):
            raise IntentError(f"action must be 'place' or 'cancel', got {self.action!r}")
        given = [n for n in ("size", "fraction", "amount") if getattr(self, n) is not None]
        if len(given) > 1:
            raise IntentError(f"give at most one of size, fraction, amount; got {given}")
        _positive("size", self.size)
        _positive("fraction", self.fraction, at_most_one=True)
        _positive("amount", self.amount)
        _positive("limit_price", self.limit_price)
        if (self.type == "limit") != (self.limit_price is not None):
            raise IntentError("limit_price is required for limit orders and only for them")
        if not isinstance(self.tag, str) or len(self.tag) > MAX_TAG:
            raise IntentError(f"tag must be a string of at most {MAX_TAG} characters")
        if self.action == "cancel" and not self.tag:
            raise IntentError("a cancel names the tag of the orders to cancel")

    @classmethod
    def cancel(cls, order: OrderIntent) -> OrderIntent:
        return cls(order.side, tag=order.tag, action="cancel")

    def decimals(self) -> dict[str, Decimal | str | None]:
        """The intent for a broker: numbers as exact Decimals of their shortest repr."""

        def dec(x: float | None) -> Decimal | None:
            return None if x is None else Decimal(str(x))

        return {
            "action": self.action,
            "side": self.side,
            "type": self.type,
            "size": dec(self.size),
            "fraction": dec(self.fraction),
            "amount": dec(self.amount),
            "limit_price": dec(self.limit_price),
            "reason": self.reason,
            "tag": self.tag,
            "lot": self.lot,
        }


@dataclass(frozen=True)
class Lot:
    """One bought lot still held: a grid level, a DCA slice, or a whole signal position."""

    tag: str
    size: float
    entry_price: float


@dataclass(frozen=True)
class Position:
    """Long-only spot holdings; `avg_price` is the size-weighted entry price (fees not
    included), 0.0 when flat."""

    size: float = 0.0
    avg_price: float = 0.0
    lots: tuple[Lot, ...] = ()

    @classmethod
    def of(cls, lots: tuple[Lot, ...]) -> Position:
        size = sum(lot.size for lot in lots)
        if not lots or size <= 0:
            return cls(lots=lots)
        cost = sum(lot.size * lot.entry_price for lot in lots)
        return cls(size, cost / size, lots)

    @property
    def is_flat(self) -> bool:
        return self.size <= 0


@dataclass(frozen=True)
class Balance:
    cash: float
    equity: float


@dataclass(frozen=True)
class StrategyState:
    """Everything `decide` knows besides the candles: the strategy (a condition
    `StrategySpec`, an `EventSpec` for grid/DCA, or a `ScriptSpec`), the position, the
    balance, the resting orders and the persisted strategy memory (JSON values)."""

    strategy: Any
    position: Position = field(default_factory=Position)
    balance: Balance = field(default_factory=lambda: Balance(0.0, 0.0))
    orders: tuple[OrderIntent, ...] = ()
    memory: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """One bar's output: intents in order (cancels first), the memory to persist and the
    strategy's log lines."""

    intents: tuple[OrderIntent, ...] = ()
    memory: Mapping[str, Any] = field(default_factory=dict)
    logs: tuple[str, ...] = ()


class IndicatorSource(Protocol):
    def get(self, name: str, params: Mapping[str, Any], output: str | None) -> FloatArray:
        """The indicator over the window (same length), NaN in warmup."""
        ...


@dataclass(frozen=True)
class BarContext:
    """What a strategy sees at a bar's close: candles up to and including this bar only."""

    candles: CandleArrays
    state: StrategyState
    clock: Clock
    indicators: IndicatorSource


class Strategy(Protocol):
    def prepare(self, candles: CandleArrays) -> None:
        """A backtest may precompute causal series over all candles (value at t from
        candles up to t only); `on_bar` must still read nothing past the window."""
        ...

    def on_bar(self, ctx: BarContext) -> Decision: ...


@dataclass(frozen=True)
class EventSpec:
    """A template that runs on the event path: "grid" or "dca" with its parameters."""

    template: str
    params: Mapping[str, Any] = field(default_factory=dict)
