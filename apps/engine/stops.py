"""Stop-loss, trailing stop and take-profit: their levels and the order they are checked in.

One set of rules for every fill path: the vectorised simulator searches a trade's bars with
arrays (`StopRules.first_exit`), the event books check one bar at a time with floats
(`StopRules.exit`). The level and touch functions take floats or numpy arrays alike.

For a long (a short is the mirror image, prices moving the other way):
- the stop-loss sits `stop_loss` below the entry price;
- the trailing stop sits `trailing_stop` below the best price of EARLIER bars of the trade
  (the highest high, starting at the entry): within a bar the order of high and low is
  unknown, so a bar's own high never raises the stop that bar is checked against;
- the stop in force is the tighter of the two;
- the take-profit sits `take_profit` above the entry price;
- within one bar the stop is checked before the take-profit (the pessimistic order);
- a bar that opens through a level fills at the open, otherwise the fill is at the level;
- an exit at the stop is "trailing_stop" only when the trail is strictly tighter than the
  stop-loss, else "stop_loss".
Slippage and fees are the caller's: these rules give the price the level is reached at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

import numpy as np

from apps.engine.candles import BoolArray, FloatArray

PositionSide = Literal["long", "short"]
StopReason = Literal["stop_loss", "take_profit", "trailing_stop"]
# A price, or one price per bar.
Prices = TypeVar("Prices", float, FloatArray)


class StopSettings(Protocol):
    @property
    def stop_loss(self) -> float | None: ...
    @property
    def take_profit(self) -> float | None: ...
    @property
    def trailing_stop(self) -> float | None: ...


@dataclass(frozen=True)
class StopRules:
    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_stop: float | None = None
    side: PositionSide = "long"

    @classmethod
    def of(cls, settings: StopSettings, side: PositionSide = "long") -> StopRules:
        return cls(settings.stop_loss, settings.take_profit, settings.trailing_stop, side)

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.stop_loss, self.take_profit, self.trailing_stop))

    @property
    def is_long(self) -> bool:
        return self.side == "long"

    # -- levels ---------------------------------------------------------------------------
    def stop_loss_level(self, entry: float) -> float | None:
        if self.stop_loss is None:
            return None
        return entry * (1 - self.stop_loss) if self.is_long else entry * (1 + self.stop_loss)

    def take_profit_level(self, entry: float) -> float | None:
        if self.take_profit is None:
            return None
        return entry * (1 + self.take_profit) if self.is_long else entry * (1 - self.take_profit)

    def trailing_level(self, best: Prices) -> Prices | None:
        """The trail behind `best`, the best price of the trade's earlier bars."""
        if self.trailing_stop is None:
            return None
        return best * (1 - self.trailing_stop) if self.is_long else best * (1 + self.trailing_stop)

    def tighter(self, trail: Prices, loss: float) -> Prices:
        """The stop closer to the price: the higher for a long, the lower for a short."""
        if isinstance(trail, np.ndarray):
            return np.maximum(trail, loss) if self.is_long else np.minimum(trail, loss)
        return max(trail, loss) if self.is_long else min(trail, loss)

    def stop_level(self, entry: float, best: Prices) -> Prices | float | None:
        """The stop in force: the tighter of the stop-loss and the trail, None if neither."""
        return self._in_force(self.stop_loss_level(entry), self.trailing_level(best))

    def _in_force(self, loss: float | None, trail: Prices | None) -> Prices | float | None:
        if trail is None:
            return loss
        return trail if loss is None else self.tighter(trail, loss)

    # -- which way is adverse ---------------------------------------------------------------
    def adverse_touch(self, level: Prices | float, high: Prices, low: Prices) -> bool | BoolArray:
        """The bar trades at or through `level` on the losing side (a stop, a liquidation)."""
        return low <= level if self.is_long else high >= level

    def favourable_touch(self, level: float, high: Prices, low: Prices) -> bool | BoolArray:
        return high >= level if self.is_long else low <= level

    def adverse_fill(self, open_: float, level: float) -> float:
        """A losing-side level fills there, or at the open when the bar gaps through it."""
        return min(open_, level) if self.is_long else max(open_, level)

    def favourable_fill(self, open_: float, level: float) -> float:
        return max(open_, level) if self.is_long else min(open_, level)

    def before(self, a: float, b: float) -> bool:
        """Whether a price falling (long) or rising (short) from above reaches `a` before `b`."""
        return a > b if self.is_long else a < b

    # -- the trail ----------------------------------------------------------------------------
    def best_after(self, best: float, high: float, low: float) -> float:
        """The best price once a bar has traded: it raises the trail from the next bar on."""
        return max(best, high) if self.is_long else min(best, low)

    def prior_best(self, entry: float, highs: FloatArray, lows: FloatArray) -> FloatArray:
        """`best` at each bar of a trade: the entry price and the extremes of earlier bars."""
        if self.is_long:
            return np.maximum.accumulate(np.concatenate(([entry], highs[:-1])))
        return np.minimum.accumulate(np.concatenate(([entry], lows[:-1])))

    # -- exits ----------------------------------------------------------------------------------
    def exit(
        self, entry: float, best: float, open_: float, high: float, low: float
    ) -> tuple[float, StopReason] | None:
        """The exit price and reason in one bar, or None; the stop before the take-profit."""
        loss = self.stop_loss_level(entry)
        trail = self.trailing_level(best)
        stop = self._in_force(loss, trail)
        if stop is not None and self.adverse_touch(stop, high, low):
            trailing = trail is not None and stop == trail and (loss is None or trail != loss)
            return self.adverse_fill(open_, stop), "trailing_stop" if trailing else "stop_loss"
        target = self.take_profit_level(entry)
        if target is not None and self.favourable_touch(target, high, low):
            return self.favourable_fill(open_, target), "take_profit"
        return None

    def first_exit(
        self, entry: float, opens: FloatArray, highs: FloatArray, lows: FloatArray
    ) -> tuple[int, float, StopReason] | None:
        """The first bar (offset from the fill bar) of a trade that exits, its price and reason."""
        best: FloatArray | None = None
        stop: FloatArray | float | None = self.stop_loss_level(entry)
        if self.trailing_stop is not None:
            best = self.prior_best(entry, highs, lows)
            stop = self.stop_level(entry, best)
        hit = np.zeros(len(opens), dtype=bool)
        if stop is not None:
            hit |= self.adverse_touch(stop, highs, lows)
        target = self.take_profit_level(entry)
        if target is not None:
            hit |= self.favourable_touch(target, highs, lows)
        if not bool(hit.any()):
            return None
        k = int(np.argmax(hit))
        best_k = float(best[k]) if best is not None else entry
        found = self.exit(entry, best_k, float(opens[k]), float(highs[k]), float(lows[k]))
        assert found is not None  # the same comparisons on the same floats as `hit`
        return k, *found
