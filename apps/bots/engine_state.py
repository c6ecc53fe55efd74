"""ORM rows -> the engine's frozen dataclasses, for one bot tick (DESIGN.md §4).

The engine never reads the database; a tick builds everything it needs here: the risk
limits resolved at start (`BotRun.limits`), the strategy spec, the strategy's view of the
shared paper account (its position, its free quote and equity, capped by the bot's
capital limit and without a holding it was told not to assume), and the kill switches.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from apps.bots.models import AccountRisk, Bot, BotRun, KillSwitch
from apps.engine.backtest import StrategySpec
from apps.engine.decide import Balance, Position, StrategyState
from apps.engine.ledger import Ledger
from apps.engine.plain import from_plain, to_plain
from apps.engine.risk import AccountSnapshot, RiskLimits, RiskState, risk_observe, risk_profile
from apps.engine.risk import KillSwitch as EngineKillSwitch
from apps.engine.strategies.base import EventSpec
from apps.engine.templates import TEMPLATES
from apps.engine.types import ZERO
from apps.engine.types import Balance as AssetBalance
from apps.strategies.models import StrategyKind

# Keys of BotRun.limits besides the engine RiskLimits fields.
BASELINE_KEY = "baseline"


class SymbolSpecs(dict[str, Any]):
    """A spec per symbol: a recorded-alerts version replays each symbol's own alerts."""


def symbol_spec(spec: Any, symbol: str) -> Any:
    """What the strategy runs on `symbol`: the bot's spec, or that symbol's own."""
    return spec[symbol] if isinstance(spec, SymbolSpecs) else spec


def bot_risk_limits(bot: Bot) -> RiskLimits:
    """The bot's profile with its overrides and launch settings; its symbols whitelisted.

    Raises the engine's `RiskConfigError` naming the field for a value above the cap."""
    overrides: dict[str, Any] = dict(bot.risk_overrides or {})
    overrides["leverage"] = bot.leverage
    if bot.max_trades_per_day is not None:
        overrides["max_trades_per_day"] = bot.max_trades_per_day
    overrides["whitelist"] = list(bot.symbols)
    return risk_profile(bot.risk_profile, **overrides)


def limits_to_json(limits: RiskLimits, *, baseline: Mapping[str, Decimal]) -> dict[str, Any]:
    data = to_plain(limits)
    data["whitelist"] = list(limits.whitelist)
    data[BASELINE_KEY] = {symbol: str(qty) for symbol, qty in baseline.items()}
    return data


def run_risk_limits(run: BotRun) -> RiskLimits:
    data = {k: v for k, v in run.limits.items() if k != BASELINE_KEY}
    limits = from_plain(RiskLimits, data)
    return replace(limits, whitelist=tuple(limits.whitelist))


def run_baseline(run: BotRun) -> dict[str, Decimal]:
    """Base units held before the start that the bot must not treat as its own."""
    return {symbol: Decimal(qty) for symbol, qty in run.limits.get(BASELINE_KEY, {}).items()}


def risk_state_load(data: Mapping[str, Any] | None) -> RiskState:
    """The engine RiskState stored in `data` (a run's or an account's JSON); a fresh one
    when nothing was observed yet. A run's JSON also holds the tick's own keys (the trade
    starts), so an empty state is told by the missing stage, not by an empty dict."""
    return RiskState.from_dict(data) if data and "stage" in data else RiskState()


def account_stage_observe(
    row: AccountRisk, limits: RiskLimits, *, equity: Decimal, now: datetime
) -> bool:
    """Observe the account-wide stage on the whole account's `equity` into `row.state` (in
    memory); returns whether it changed, for the caller to write as it writes."""
    before = risk_state_load(row.state)
    after = risk_observe(before, limits, equity=equity, now=now)
    if after == before:
        return False
    row.state = after.to_dict()
    return True


def run_risk_state(run: BotRun) -> RiskState:
    return risk_state_load(run.risk_state)


def run_risk_state_save(run: BotRun, state: RiskState) -> None:
    """Store `state` on the run, keeping the tick's other keys beside it."""
    run.risk_state = {**(run.risk_state or {}), **state.to_dict()}


def bot_strategy_spec(bot: Bot) -> StrategySpec | EventSpec | SymbolSpecs | None:
    """The version's engine spec (`StrategyVersion.engine_spec`) with the bot's parameter
    overrides; None for scripts (they run in the sandbox, script_step.py); for recorded
    alerts, each symbol's own alerts (`SymbolSpecs`; StrategySpecError naming "symbol"
    for a symbol the version holds none for). A tick builds it once per run."""
    version = bot.strategy_version
    assert version is not None  # signal bots do not tick
    if version.kind == StrategyKind.SCRIPT:
        return None
    if version.kind == StrategyKind.RECORDED:
        return SymbolSpecs({symbol: version.engine_spec(symbol=symbol) for symbol in bot.symbols})
    params = bot_script_params(bot)
    template = TEMPLATES.get(version.template) if version.kind == StrategyKind.TEMPLATE else None
    if template is not None and template.kind == "event":
        return EventSpec(version.template, params)
    spec = version.engine_spec()
    if not bot.params:
        return spec
    spec = replace(spec, params={**spec.params, **bot.params})
    spec.validate()
    return spec


def bot_script_params(bot: Bot) -> dict[str, Any]:
    version = bot.strategy_version
    assert version is not None
    return {**version.params, **(bot.params or {})}


def bot_account_view(
    account: AccountSnapshot,
    *,
    symbols: list[str],
    baseline: Mapping[str, Decimal],
    capital_limit: Decimal | None,
) -> AccountSnapshot:
    """The account as one bot may use it: without the base units it did not assume, and
    with at most `capital_limit` in quote plus position value."""
    balances = dict(account.balances)
    for symbol in symbols:
        base = symbol.partition("/")[0]
        skip = baseline.get(symbol, ZERO)
        held = balances.get(base)
        if held is not None and skip > 0:
            total = max(ZERO, held.total - skip)
            balances[base] = AssetBalance(base, total, min(held.locked, total))
    view = replace(account, balances=balances)
    if capital_limit is None:
        return view
    positions = sum((view.position_value(s) for s in symbols if s in view.marks), ZERO)
    cash = balances.get(account.quote, AssetBalance(account.quote, ZERO))
    room = max(ZERO, capital_limit - positions)
    if cash.free > room:
        balances[account.quote] = AssetBalance(account.quote, room + cash.locked, cash.locked)
    return replace(account, balances=balances)


def held_marks(ledger: Ledger) -> dict[str, Decimal]:
    """A stand-in mark (the mean entry price) for every base asset the account holds.

    Bots sharing an account tick one symbol at a time; the risk layer needs a mark for
    every holding, and a symbol this tick has no candle for is marked at its cost."""
    marks = {}
    for asset, amount in ledger.balances().items():
        if asset != ledger.quote and amount:
            symbol = f"{asset}/{ledger.quote}"
            marks[symbol] = ledger.holding(symbol).avg_price
    return marks


def strategy_state(
    spec: Any, view: AccountSnapshot, *, symbol: str, avg_price: Decimal, memory: Any
) -> StrategyState:
    base = symbol.partition("/")[0]
    held = view.balances.get(base)
    qty = ZERO if held is None else held.total
    return StrategyState(
        symbol_spec(spec, symbol),
        Position(float(qty), float(avg_price) if qty > 0 else 0.0),
        Balance(float(view.free(view.quote)), float(view.equity)),
        memory=memory or {},
    )


def kill_switches(run: BotRun) -> EngineKillSwitch:
    """The global and the owner's panic switch, as the risk layer reads them (one query)."""
    rows = KillSwitch.objects.filter(engaged=True, user__isnull=True) | KillSwitch.objects.filter(
        engaged=True, user_id=run.bot.owner_id
    )
    scopes = {row.user_id is None: True for row in rows.only("user_id")}
    return EngineKillSwitch(global_=scopes.get(True, False), user=scopes.get(False, False))
