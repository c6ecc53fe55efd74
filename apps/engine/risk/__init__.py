"""Pre-trade risk: every intent passes `risk_check` before any broker sees it.

A tick runs, in order (DESIGN.md §4):
    state  = risk_observe(state, limits, equity=..., now=...)   # day roll, breaches
    result = risk_check(intents, ..., state=state)              # sized requests + rejections
    for request in result.requests: broker.place_order(request)
and persists `result.state`. Every rejection carries the limit's name and a sentence for
the bot log and the audit.

Trading stages: ACTIVE (everything allowed) -> REDUCING (only sells that shrink a
position) -> HALTED (nothing). A drawdown or daily-loss breach moves the bot (or, with the
account's own `RiskState`, every bot of the account) forward; only `risk_resume` (an
explicit, audited action) or the daily-loss auto-resume at the next UTC day moves it back.
A kill switch (bot, user or global) refuses every strategy intent; `risk_flatten` builds
the kill switch's own exit orders.

Sizing (buys without an explicit size): "risk" risks `risk_per_trade` of equity at the
`stop_loss` distance, "percent" buys `position_pct` of equity, "fixed" a quote amount,
"all_in" the free quote (the backtest default, so a paper bot can replay a backtest).
Market buys are sent as `quote_qty` so they are sized at the fill price, as the
backtest sizes them. Profiles (`risk_profile`) are presets whose every value can be
overridden up to the profile's cap.
"""

from apps.engine.risk.check import (
    AccountSnapshot,
    KillSwitch,
    Rejection,
    RiskResult,
    risk_check,
    risk_flatten,
)
from apps.engine.risk.limits import (
    PROFILES,
    RiskConfigError,
    RiskLimits,
    SizingMode,
    Stage,
    risk_profile,
)
from apps.engine.risk.state import Breach, RiskState, risk_observe, risk_resume

__all__ = [
    "PROFILES",
    "AccountSnapshot",
    "Breach",
    "KillSwitch",
    "Rejection",
    "RiskConfigError",
    "RiskLimits",
    "RiskResult",
    "RiskState",
    "SizingMode",
    "Stage",
    "risk_check",
    "risk_flatten",
    "risk_observe",
    "risk_profile",
    "risk_resume",
]
