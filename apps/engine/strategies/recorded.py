"""Recorded webhook alerts as a strategy ("signal backtest"): each alert acts at the close
of the bar during which it arrived, so, as for every strategy, it fills at the next bar's
open. The same alerts replayed over stored candles give a webhook bot the backtest's
results (trades, metrics, equity) of a coded strategy.

Sizes: `contracts` are base units, `quote` a quote amount, `equity_pct` a percentage of
the cash at that bar; without a size a buy takes the execution config's sizing rule and a
sell or close sells the whole position.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from apps.engine.candles import CandleArrays
from apps.engine.strategies.base import BarContext, Decision, OrderIntent, Side

ACTIONS = ("buy", "sell", "close")
SIZE_MODES = ("", "contracts", "quote", "equity_pct")


@dataclass(frozen=True)
class RecordedSignal:
    time: datetime  # when the alert arrived, tz-aware
    action: str  # buy, sell or close
    size_mode: str = ""
    size: float | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, got {self.action!r}")
        if self.size_mode not in SIZE_MODES:
            raise ValueError(f"size_mode must be one of {SIZE_MODES}, got {self.size_mode!r}")
        if self.time.tzinfo is None:
            raise ValueError("signal times must be tz-aware")


def recorded_signals_from_params(params: Mapping[str, Any]) -> list[RecordedSignal]:
    """The alerts of `EventSpec("recorded", {"alerts": [...]})`: JSON items
    {"time": ISO 8601 with offset, "action", "size_mode", "size": number, text or null},
    as a recorded-alerts strategy version keeps them. ValueError naming the item."""
    alerts = params.get("alerts")
    if not isinstance(alerts, list):
        raise ValueError("alerts must be a list of {time, action, size_mode, size}")
    signals = []
    for index, item in enumerate(alerts):
        try:
            size = item.get("size")
            signals.append(
                RecordedSignal(
                    time=datetime.fromisoformat(str(item["time"])),
                    action=str(item["action"]),
                    size_mode=str(item.get("size_mode") or ""),
                    size=None if size in (None, "") else float(size),
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"alerts[{index}]: {exc}") from exc
    return signals


class RecordedSignalsStrategy:
    def __init__(self, signals: Sequence[RecordedSignal]) -> None:
        self.signals = sorted(signals, key=lambda s: s.time)
        self.by_bar: dict[int, list[RecordedSignal]] = {}

    def prepare(self, candles: CandleArrays) -> None:
        """Assign each alert to the bar open at its arrival (alerts before the first bar
        or after the last bar's close are outside the replay)."""
        self.by_bar = {}
        if not len(candles):
            return
        opens = candles.time.astype("datetime64[us]")
        step = opens[1] - opens[0] if len(opens) > 1 else np.timedelta64(1, "h")
        for signal in self.signals:
            moment = np.datetime64(signal.time.astimezone(UTC).replace(tzinfo=None), "us")
            bar = int(np.searchsorted(opens, moment, side="right")) - 1
            if bar < 0 or moment >= opens[-1] + step:
                continue
            self.by_bar.setdefault(bar, []).append(signal)

    def on_bar(self, ctx: BarContext) -> Decision:
        bar = len(ctx.candles) - 1
        intents = tuple(
            intent
            for signal in self.by_bar.get(bar, ())
            if (intent := self.intent(signal, ctx)) is not None
        )
        return Decision(intents, ctx.state.memory)

    @staticmethod
    def intent(signal: RecordedSignal, ctx: BarContext) -> OrderIntent | None:
        return signal_intent(
            signal.action,
            signal.size_mode,
            signal.size,
            equity=ctx.state.balance.equity,
            flat=ctx.state.position.is_flat,
        )


def signal_intent(
    action: str,
    size_mode: str,
    size: float | None,
    *,
    equity: float,
    flat: bool,
    tag: str = "signal",
) -> OrderIntent | None:
    """The order an alert asks for, the same in a signal backtest and in a live bot.

    Without a size (or for a close) a buy takes the sizing rule of the risk profile and a
    sell sells the whole position; a sell with nothing held is no order (None). `equity`
    is the bot's equity, for `equity_pct` sells; an `equity_pct` buy is that fraction of
    the free cash, as the risk layer sizes it."""
    side: Side = "buy" if action == "buy" else "sell"
    if action == "close" or size is None or not size_mode:
        if side == "sell" and flat:
            return None
        return OrderIntent(side, tag=tag)
    if size_mode == "contracts":
        return OrderIntent(side, size=size, tag=tag)
    if size_mode == "equity_pct":
        if side == "buy":
            return OrderIntent(side, fraction=min(size / 100, 1.0), tag=tag)
        return OrderIntent(side, amount=equity * size / 100, tag=tag)
    return OrderIntent(side, amount=size, tag=tag)
