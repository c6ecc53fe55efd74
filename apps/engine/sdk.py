"""The `sdk` object a script strategy's `main(sdk, params)` receives on each closed candle.

The surface is small and plain, because scripts are untrusted (the sandbox runs them):
numbers come back as Python floats, times as tz-aware datetimes, series as read-only
`Series` sequences, and account facts as frozen dataclasses. No numpy array, candle store,
book or clock is reachable through a public attribute.

    sdk.candles                 the window up to and including this bar:
                                .open .high .low .close .volume (Series), .time, len()
    sdk.indicator(name, output=None, **params) -> Series   e.g. ("bollinger", "lower", period=20)
    sdk.sma(period) sdk.ema(period) sdk.wma(period) sdk.rsi(period) sdk.atr(period)
    sdk.macd(fast, slow, signal, output="macd") sdk.bollinger(period, num_std, output="middle")
    sdk.position                .size, .avg_price, .lots (each .tag .size .entry_price)
    sdk.balance                 .cash, .equity (at this bar's close)
    sdk.orders                  resting limit orders (OrderIntent), e.g. to cancel by tag
    sdk.buy(size=None, fraction=None, amount=None, limit=None, tag="")
    sdk.sell(size=None, fraction=None, amount=None, limit=None, tag="", lot=None)
    sdk.close()                 sell everything at the next open
    sdk.cancel(tag=None)        cancel resting orders with this tag (all when None)
    sdk.state                   a dict kept between bars; JSON values only (bots persist it)
    sdk.log(*parts)             a line in the run's log (a bot's log)
    sdk.now                     this bar's close time (from the injected clock)

A Series is indexed like a list: `s[-1]` is this bar's value, `s[-2]` the previous one,
`s[-5:]` a list of the last five; warmup values are NaN (every comparison with NaN is
False). Orders placed at this close fill at the next bar's open (market) or rest until
touched (limit); see apps/engine/strategies/base.py for the size semantics. An example:

    def main(sdk, params):
        fast, slow = sdk.sma(params["fast"]), sdk.sma(params["slow"])
        if len(sdk.candles) < 2:
            return
        if sdk.position.size == 0 and fast[-2] < slow[-2] and fast[-1] > slow[-1]:
            sdk.buy()                     # sized by the execution config (all-in by default)
            sdk.state["buys"] = sdk.state.get("buys", 0) + 1
        elif sdk.position.size > 0 and fast[-2] > slow[-2] and fast[-1] < slow[-1]:
            sdk.close()
            sdk.log("closed at", sdk.candles.close[-1])
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any, overload

from apps.engine.candles import FloatArray, TimeArray
from apps.engine.clock import to_datetime
from apps.engine.strategies.base import (
    Balance,
    BarContext,
    IntentReason,
    OrderIntent,
    Position,
)

MAX_STATE_CHARS = 65_536
MAX_LOG_LINES = 100
MAX_LOG_CHARS = 1_000


class SdkError(ValueError):
    """A script used the sdk wrongly; the message says how."""


class Series:
    """A read-only numeric series of the window: `s[-1]` is the latest value."""

    __slots__ = ("_values",)

    def __init__(self, values: FloatArray) -> None:
        self._values = values

    def __len__(self) -> int:
        return len(self._values)

    @overload
    def __getitem__(self, key: int) -> float: ...
    @overload
    def __getitem__(self, key: slice) -> list[float]: ...
    def __getitem__(self, key: int | slice) -> float | list[float]:
        if isinstance(key, slice):
            values: list[float] = self._values[key].tolist()
            return values
        if isinstance(key, bool) or not isinstance(key, int):
            raise SdkError("series indexes are whole numbers or slices")
        return float(self._values[key])

    def __iter__(self) -> Iterator[float]:
        return iter(self._values.tolist())

    def to_list(self) -> list[float]:
        values: list[float] = self._values.tolist()
        return values

    def __repr__(self) -> str:
        return f"Series(len={len(self)}, last={self[-1] if len(self) else None})"


class Times:
    """The window's candle open times as tz-aware UTC datetimes."""

    __slots__ = ("_times",)

    def __init__(self, times: TimeArray) -> None:
        self._times = times

    def __len__(self) -> int:
        return len(self._times)

    def __getitem__(self, key: int) -> datetime:
        if isinstance(key, bool) or not isinstance(key, int):
            raise SdkError("time indexes are whole numbers")
        return to_datetime(self._times[key])


class CandlesView:
    """The candles up to and including this bar, by column."""

    __slots__ = ("close", "high", "low", "open", "time", "volume")

    def __init__(self, ctx: BarContext) -> None:
        c = ctx.candles
        self.open, self.high, self.low = Series(c.open), Series(c.high), Series(c.low)
        self.close, self.volume, self.time = Series(c.close), Series(c.volume), Times(c.time)

    def __len__(self) -> int:
        return len(self.close)


class Sdk:
    """One bar's sdk; `intents()`, `json_state()` and `lines()` are read by the engine after
    `main` returns (they are public names but give scripts nothing new)."""

    __slots__ = (
        "_clock",
        "_indicators",
        "_intents",
        "_logs",
        "_state",
        "balance",
        "candles",
        "orders",
        "position",
    )

    def __init__(self, ctx: BarContext) -> None:
        self.candles = CandlesView(ctx)
        self.position: Position = ctx.state.position
        self.balance: Balance = ctx.state.balance
        self.orders: tuple[OrderIntent, ...] = ctx.state.orders
        self._clock, self._indicators = ctx.clock, ctx.indicators
        # A JSON round trip: the script gets its own copy, exactly as a bot reloads it.
        self._state: dict[str, Any] = json.loads(json.dumps(dict(ctx.state.memory)))
        self._intents: list[OrderIntent] = []
        self._logs: list[str] = []

    # -- data -------------------------------------------------------------------------------
    @property
    def now(self) -> datetime:
        return self._clock.now()

    @property
    def state(self) -> dict[str, Any]:
        return self._state

    def indicator(self, name: str, output: str | None = None, **params: Any) -> Series:
        return Series(self._indicators.get(name, params, output))

    def sma(self, period: int = 20) -> Series:
        return self.indicator("sma", period=period)

    def ema(self, period: int = 20) -> Series:
        return self.indicator("ema", period=period)

    def wma(self, period: int = 20) -> Series:
        return self.indicator("wma", period=period)

    def rsi(self, period: int = 14) -> Series:
        return self.indicator("rsi", period=period)

    def atr(self, period: int = 14) -> Series:
        return self.indicator("atr", period=period)

    def macd(self, fast: int = 12, slow: int = 26, signal: int = 9, output: str = "macd") -> Series:
        return self.indicator("macd", output, fast=fast, slow=slow, signal=signal)

    def bollinger(self, period: int = 20, num_std: float = 2.0, output: str = "middle") -> Series:
        return self.indicator("bollinger", output, period=period, num_std=num_std)

    # -- orders -----------------------------------------------------------------------------
    def buy(
        self,
        size: float | None = None,
        fraction: float | None = None,
        amount: float | None = None,
        limit: float | None = None,
        tag: str = "",
    ) -> None:
        self._place("buy", size, fraction, amount, limit, tag, None)

    def sell(
        self,
        size: float | None = None,
        fraction: float | None = None,
        amount: float | None = None,
        limit: float | None = None,
        tag: str = "",
        lot: str | None = None,
    ) -> None:
        self._place("sell", size, fraction, amount, limit, tag, lot)

    def close(self) -> None:
        self._place("sell", None, None, None, None, "", None)

    def cancel(self, tag: str | None = None) -> None:
        for order in self.orders:
            if tag is None or order.tag == tag:
                self._intents.append(OrderIntent.cancel(order))

    def _place(
        self,
        side: str,
        size: float | None,
        fraction: float | None,
        amount: float | None,
        limit: float | None,
        tag: str,
        lot: str | None,
    ) -> None:
        reason: IntentReason = "signal"
        try:
            intent = OrderIntent(
                side,  # type: ignore[arg-type]  # checked by OrderIntent
                "market" if limit is None else "limit",
                size,
                fraction,
                amount,
                limit,
                reason,
                tag or (f"order-{len(self.candles)}-{len(self._intents)}" if limit else ""),
                lot,
            )
        except ValueError as exc:
            raise SdkError(f"sdk.{side}: {exc}") from None
        self._intents.append(intent)

    def log(self, *parts: Any) -> None:
        if len(self._logs) >= MAX_LOG_LINES:
            raise SdkError(f"sdk.log: at most {MAX_LOG_LINES} lines per bar")
        self._logs.append(" ".join(str(part) for part in parts)[:MAX_LOG_CHARS])

    # -- read by the engine after main() ----------------------------------------------------
    def intents(self) -> tuple[OrderIntent, ...]:
        cancels = [i for i in self._intents if i.action == "cancel"]
        return (*cancels, *[i for i in self._intents if i.action != "cancel"])

    def lines(self) -> tuple[str, ...]:
        return tuple(self._logs)

    def json_state(self) -> dict[str, Any]:
        """The state as it will be persisted; SdkError if it is not plain JSON."""
        state = self._state
        if not all(isinstance(key, str) for key in state):
            raise SdkError("sdk.state keys must be strings")
        try:
            text = json.dumps(state, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise SdkError(f"sdk.state must hold JSON values only: {exc}") from None
        if len(text) > MAX_STATE_CHARS:
            raise SdkError(f"sdk.state is {len(text)} characters; the limit is {MAX_STATE_CHARS}")
        loaded: dict[str, Any] = json.loads(text)
        return loaded
