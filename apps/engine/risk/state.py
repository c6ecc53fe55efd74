"""The risk layer's memory between ticks: the trading stage, its breach, the day's start
equity, the peak and today's trade count; and the transitions between stages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal, localcontext
from typing import Any

from apps.engine.risk.limits import RiskLimits, Stage, pct
from apps.engine.types import DECIMAL_CONTEXT, to_decimal


@dataclass(frozen=True)
class Breach:
    """The limit that moved a stage, and why, in words."""

    limit: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class RiskState:
    """What the risk layer remembers between ticks; persist it with `to_dict`."""

    stage: Stage = Stage.ACTIVE
    breach: Breach | None = None
    day: date | None = None
    day_start_equity: Decimal | None = None
    peak_equity: Decimal | None = None
    trades_today: int = 0

    def to_dict(self) -> dict[str, Any]:
        breach = self.breach
        return {
            "stage": self.stage.value,
            "breach": None
            if breach is None
            else {"limit": breach.limit, "reason": breach.reason, "at": breach.at.isoformat()},
            "day": None if self.day is None else self.day.isoformat(),
            "day_start_equity": _str_or_none(self.day_start_equity),
            "peak_equity": _str_or_none(self.peak_equity),
            "trades_today": self.trades_today,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RiskState:
        raw = data.get("breach")
        breach = (
            None
            if raw is None
            else Breach(raw["limit"], raw["reason"], datetime.fromisoformat(raw["at"]))
        )
        day = data.get("day")
        return cls(
            Stage(data["stage"]),
            breach,
            None if day is None else date.fromisoformat(day),
            _decimal_or_none(data.get("day_start_equity")),
            _decimal_or_none(data.get("peak_equity")),
            int(data.get("trades_today", 0)),
        )


def risk_observe(
    state: RiskState, limits: RiskLimits, *, equity: Decimal, now: datetime
) -> RiskState:
    """Roll the UTC day, track the peak, and move the stage on a drawdown or daily-loss
    breach. Stages only move forward here; see `risk_resume`."""
    with localcontext(DECIMAL_CONTEXT):
        today = now.astimezone(UTC).date()
        if state.day != today:
            state = replace(state, day=today, day_start_equity=equity, trades_today=0)
            breach = state.breach
            if limits.daily_loss_auto_resume and breach and breach.limit == "daily_loss_limit":
                state = replace(state, stage=Stage.ACTIVE, breach=None)
        peak = equity if state.peak_equity is None else max(state.peak_equity, equity)
        state = replace(state, peak_equity=peak)
        drawdown = _loss_breach("max_drawdown", limits.max_drawdown, equity, peak, "its peak", now)
        if drawdown is not None:
            state = _escalate(state, limits.drawdown_stage, drawdown)
        daily = _loss_breach(
            "daily_loss_limit",
            limits.daily_loss_limit,
            equity,
            state.day_start_equity,
            "today's start",
            now,
        )
        if daily is not None:
            state = _escalate(state, limits.daily_loss_stage, daily)
        return state


def _loss_breach(
    name: str,
    limit: Decimal | None,
    equity: Decimal,
    reference: Decimal | None,
    what: str,
    now: datetime,
) -> Breach | None:
    if limit is None or reference is None or reference <= 0:
        return None
    if equity > reference * (1 - limit):
        return None
    reason = (
        f"equity {equity:.2f} is {pct(1 - equity / reference)} below {what} {reference:.2f} "
        f"(limit {pct(limit)})"
    )
    return Breach(name, reason, now)


def risk_resume(state: RiskState, *, equity: Decimal) -> RiskState:
    """ACTIVE again by an explicit action. The peak and the day's start equity restart at
    `equity`, or the same breach would trip again at once."""
    return replace(
        state, stage=Stage.ACTIVE, breach=None, peak_equity=equity, day_start_equity=equity
    )


def _escalate(state: RiskState, stage: Stage, breach: Breach) -> RiskState:
    if stage.severity <= state.stage.severity:
        return state
    return replace(state, stage=stage, breach=breach)


def _str_or_none(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _decimal_or_none(value: Any) -> Decimal | None:
    return None if value is None else to_decimal(value)
