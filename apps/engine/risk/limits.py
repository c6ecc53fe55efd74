"""Risk limits: one bot's settings, and the conservative/balanced/aggressive profiles."""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from apps.engine.types import ZERO, TradingValueError, to_decimal

SizingMode = Literal["all_in", "percent", "fixed", "risk"]


class RiskConfigError(TradingValueError):
    """A risk setting is out of range; `field` names it."""


class Stage(StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"

    @property
    def severity(self) -> int:
        return (Stage.ACTIVE, Stage.REDUCING, Stage.HALTED).index(self)


@dataclass(frozen=True)
class RiskLimits:
    """One bot's limits; None switches a limit off (profiles never do, see risk_profiles).

    Fractions are of equity: `risk_per_trade` 0.0025 risks 0.25 % at the stop,
    `position_pct` caps one symbol's position value, `max_exposure` all positions' value,
    `daily_loss_limit` the loss since the UTC day's start, `max_drawdown` the fall from
    the peak. `leverage` is the bot's setting, at most `max_leverage`; spot is 1.
    """

    sizing: SizingMode = "risk"
    risk_per_trade: Decimal = Decimal("0.0025")
    stop_loss: Decimal | None = Decimal("0.02")
    position_pct: Decimal | None = Decimal("0.10")
    fixed_amount: Decimal | None = None
    max_trades_per_day: int | None = 5
    daily_loss_limit: Decimal | None = Decimal("0.02")
    daily_loss_stage: Stage = Stage.REDUCING
    daily_loss_auto_resume: bool = True
    max_drawdown: Decimal | None = Decimal("0.10")
    drawdown_stage: Stage = Stage.HALTED
    whitelist: tuple[str, ...] = ()
    max_exposure: Decimal | None = Decimal("0.5")
    leverage: Decimal = Decimal(1)
    max_leverage: Decimal = Decimal(1)

    @classmethod
    def unlimited(cls, sizing: SizingMode = "all_in", **values: Any) -> RiskLimits:
        """Limits that refuse nothing: sizing only (replaying a backtest, tests)."""
        off: dict[str, Any] = dict.fromkeys(
            ("position_pct", "max_trades_per_day", "daily_loss_limit", "max_drawdown"), None
        )
        off.update(max_exposure=None, stop_loss=None, sizing=sizing)
        return cls(**{**off, **values})

    def __post_init__(self) -> None:
        for name in (
            "risk_per_trade",
            "stop_loss",
            "position_pct",
            "daily_loss_limit",
            "max_drawdown",
        ):
            value = getattr(self, name)
            if value is not None and not ZERO < value <= 1:
                raise RiskConfigError(f"{name} must be a fraction in (0, 1], got {value}", name)
        if self.max_exposure is not None and not ZERO < self.max_exposure <= self.max_leverage:
            raise RiskConfigError("max_exposure must be positive and at most max_leverage")
        if not Decimal(1) <= self.leverage <= self.max_leverage:
            raise RiskConfigError(
                f"leverage {self.leverage} must be between 1 and {self.max_leverage}", "leverage"
            )
        if self.max_trades_per_day is not None and self.max_trades_per_day < 1:
            raise RiskConfigError("max_trades_per_day must be at least 1", "max_trades_per_day")
        if self.sizing == "risk" and self.stop_loss is None:
            raise RiskConfigError("risk sizing needs a stop_loss distance", "stop_loss")
        if self.sizing == "percent" and self.position_pct is None:
            raise RiskConfigError("percent sizing needs position_pct", "position_pct")
        if self.sizing == "fixed" and (self.fixed_amount is None or self.fixed_amount <= 0):
            raise RiskConfigError("fixed sizing needs a positive fixed_amount", "fixed_amount")
        if self.sizing not in ("all_in", "percent", "fixed", "risk"):
            raise RiskConfigError(f"unknown sizing {self.sizing!r}", "sizing")


def pct(fraction: Decimal) -> str:
    return f"{fraction * 100:.2f} %"


@dataclass(frozen=True)
class Profile:
    """A preset: default limits and the highest value a bot may override each one to."""

    name: str
    defaults: dict[str, Any]
    caps: dict[str, Decimal | int]


def _d(text: str) -> Decimal:
    return Decimal(text)


PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile(
            "conservative",
            {
                "sizing": "risk",
                "risk_per_trade": _d("0.0025"),
                "stop_loss": _d("0.02"),
                "position_pct": _d("0.10"),
                "max_trades_per_day": 5,
                "daily_loss_limit": _d("0.02"),
                "max_drawdown": _d("0.10"),
                "max_exposure": _d("0.5"),
                "max_leverage": _d("1"),
            },
            {
                "risk_per_trade": _d("0.005"),
                "position_pct": _d("0.25"),
                "max_trades_per_day": 10,
                "daily_loss_limit": _d("0.03"),
                "max_drawdown": _d("0.15"),
                "max_exposure": _d("1"),
                "leverage": _d("1"),
            },
        ),
        Profile(
            "balanced",
            {
                "sizing": "risk",
                "risk_per_trade": _d("0.01"),
                "stop_loss": _d("0.03"),
                "position_pct": _d("0.25"),
                "max_trades_per_day": 10,
                "daily_loss_limit": _d("0.05"),
                "max_drawdown": _d("0.20"),
                "max_exposure": _d("1"),
                "max_leverage": _d("3"),
            },
            {
                "risk_per_trade": _d("0.02"),
                "position_pct": _d("0.5"),
                "max_trades_per_day": 25,
                "daily_loss_limit": _d("0.08"),
                "max_drawdown": _d("0.30"),
                "max_exposure": _d("2"),
                "leverage": _d("3"),
            },
        ),
        Profile(
            "aggressive",
            {
                "sizing": "risk",
                "risk_per_trade": _d("0.02"),
                "stop_loss": _d("0.05"),
                "position_pct": _d("1"),
                "max_trades_per_day": 50,
                "daily_loss_limit": _d("0.10"),
                "max_drawdown": _d("0.35"),
                "max_exposure": _d("1"),
                "max_leverage": _d("5"),
            },
            {
                "risk_per_trade": _d("0.05"),
                "position_pct": _d("1"),
                "max_trades_per_day": 200,
                "daily_loss_limit": _d("0.20"),
                "max_drawdown": _d("0.50"),
                "max_exposure": _d("5"),
                "leverage": _d("5"),
            },
        ),
    )
}
DECIMAL_SETTINGS = frozenset(
    {
        "risk_per_trade",
        "stop_loss",
        "position_pct",
        "fixed_amount",
        "daily_loss_limit",
        "max_drawdown",
        "max_exposure",
        "leverage",
    }
)
# A setting a bot may not override: the ceiling itself.
FIXED = frozenset({"max_leverage"})
# The stage a breach moves to: a bot may make it stricter, never softer (ACTIVE would
# switch the limit off).
STAGE_SETTINGS = frozenset({"daily_loss_stage", "drawdown_stage"})


def _default_stage(profile: Profile, key: str) -> Stage:
    stage: Stage = profile.defaults.get(key, getattr(RiskLimits(), key))
    return stage


def risk_profile(name: str, **overrides: Any) -> RiskLimits:
    """The limits of profile `name` with `overrides` applied.

    Raises `RiskConfigError` naming the field for an unknown profile or setting, a value
    that is not a number, a limit switched off, or a value above the profile's cap.
    """
    profile = PROFILES.get(name)
    if profile is None:
        raise RiskConfigError(
            f"unknown risk profile {name!r}; choose {', '.join(PROFILES)}", "risk_profile"
        )
    known = {f.name for f in fields(RiskLimits)} - FIXED
    values = dict(profile.defaults)
    for key, raw in overrides.items():
        if key not in known:
            raise RiskConfigError(f"{key!r} is not a risk setting a bot can change", key)
        values[key] = _override(profile, key, raw)
    return RiskLimits(**values)


def _override(profile: Profile, key: str, raw: Any) -> Any:
    cap = profile.caps.get(key)
    if raw is None:
        if cap is not None:
            raise RiskConfigError(
                f"{key} cannot be switched off in the {profile.name} profile", key
            )
        return None
    value = _typed(key, raw)
    if key in STAGE_SETTINGS and value.severity < _default_stage(profile, key).severity:
        raise RiskConfigError(
            f"{key} can be made stricter than {_default_stage(profile, key).value}, "
            f"not softened to {value.value}",
            key,
        )
    if cap is not None and value > cap:
        raise RiskConfigError(
            f"{key} {raw} is above the {profile.name} profile's cap of {cap}", key
        )
    return value


def _typed(key: str, raw: Any) -> Any:
    """`raw` (a form or JSON value) as the setting's type."""
    try:
        if key in DECIMAL_SETTINGS:
            return to_decimal(raw, key)
        if key == "max_trades_per_day":
            if isinstance(raw, bool):
                raise ValueError
            return int(str(raw))  # "2.5" and 2.5 are refused, not truncated
        if key in STAGE_SETTINGS:
            return Stage(raw)
    except (TradingValueError, ValueError, TypeError):
        raise RiskConfigError(f"{key} must be {_expected(key)}, got {raw!r}", key) from None
    if key == "whitelist":
        return tuple(raw)
    return raw


def _expected(key: str) -> str:
    if key in DECIMAL_SETTINGS:
        return "a number"
    if key == "max_trades_per_day":
        return "a whole number"
    return "one of " + ", ".join(stage.value for stage in Stage)
