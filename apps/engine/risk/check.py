"""Pre-trade checks: intents in, sized order requests and named rejections out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_DOWN, ROUND_UP, Decimal, localcontext
from typing import Literal

from apps.engine.risk.limits import RiskLimits, Stage, pct
from apps.engine.risk.state import RiskState
from apps.engine.strategies.base import OrderIntent
from apps.engine.types import (
    DECIMAL_CONTEXT,
    ZERO,
    Balance,
    Instrument,
    OrderRequest,
    to_decimal,
)

KillScope = Literal["global", "user", "bot"]


@dataclass(frozen=True)
class KillSwitch:
    """The three kill switches as the app reads them; any one on refuses every intent."""

    global_: bool = False
    user: bool = False
    bot: bool = False

    @property
    def engaged(self) -> KillScope | None:
        if self.global_:
            return "global"
        if self.user:
            return "user"
        return "bot" if self.bot else None


@dataclass(frozen=True)
class AccountSnapshot:
    """The account as the risk layer sees it: balances (with locks) in one quote asset and
    a mark price per "BASE/QUOTE" symbol for every base asset held."""

    quote: str
    balances: Mapping[str, Balance]
    marks: Mapping[str, Decimal]

    def free(self, asset: str) -> Decimal:
        balance = self.balances.get(asset)
        return ZERO if balance is None else balance.free

    def position_value(self, symbol: str) -> Decimal:
        base = symbol.partition("/")[0]
        balance = self.balances.get(base)
        return ZERO if balance is None else balance.total * self.marks[symbol]

    @property
    def gross_exposure(self) -> Decimal:
        return sum(
            (
                self.position_value(f"{asset}/{self.quote}")
                for asset, b in self.balances.items()
                if asset != self.quote and b.total
            ),
            ZERO,
        )

    @property
    def equity(self) -> Decimal:
        cash = self.balances.get(self.quote)
        return (ZERO if cash is None else cash.total) + self.gross_exposure


@dataclass(frozen=True)
class Rejection:
    """An intent the risk layer refused: which one, the limit's name and why."""

    index: int
    side: str
    symbol: str
    limit: str
    reason: str

    @property
    def message(self) -> str:
        return f"{self.side} {self.symbol} refused by {self.limit}: {self.reason}"


@dataclass(frozen=True)
class RiskResult:
    """Requests to send, tags of resting orders to cancel, rejections, and the new state."""

    requests: tuple[OrderRequest, ...]
    cancels: tuple[str, ...]
    rejections: tuple[Rejection, ...]
    state: RiskState


def risk_check(
    intents: Sequence[OrderIntent],
    *,
    instrument: Instrument,
    limits: RiskLimits,
    state: RiskState,
    account: AccountSnapshot,
    kill: KillSwitch = KillSwitch(),
    account_state: RiskState | None = None,
    id_prefix: str,
) -> RiskResult:
    """Check and size `intents` for `instrument` (the window's last close is its mark).

    Client order ids are `{id_prefix}-{index}`: give a prefix unique per bot and candle
    (for example "b17-1718000000"), so a retried tick asks for the same ids and a
    broker recognises them instead of placing twice.
    """
    with localcontext(DECIMAL_CONTEXT):
        check = _Check(instrument, limits, state, account, kill, account_state, id_prefix)
        for index, intent in enumerate(intents):
            check.intent(index, intent)
        return RiskResult(
            tuple(check.requests), tuple(check.cancels), tuple(check.rejections), check.state
        )


def risk_flatten(
    account: AccountSnapshot, instruments: Sequence[Instrument], *, id_prefix: str
) -> tuple[OrderRequest, ...]:
    """Market sells of every free base unit held on `instruments`: the kill switch's
    "flatten positions". They bypass the checks (they only reduce risk)."""
    requests = []
    for index, instrument in enumerate(instruments):
        qty = instrument.floor_qty(account.free(instrument.base))
        if qty > 0 and qty >= instrument.min_qty:
            requests.append(
                OrderRequest(
                    f"{id_prefix}-{index}",
                    instrument.symbol,
                    "sell",
                    qty=qty,
                    tag="flatten",
                    reason="kill_switch",
                )
            )
    return tuple(requests)


class _Check:
    """One tick's checks; intents are taken in order, so later buys see earlier ones."""

    def __init__(
        self,
        instrument: Instrument,
        limits: RiskLimits,
        state: RiskState,
        account: AccountSnapshot,
        kill: KillSwitch,
        account_state: RiskState | None,
        id_prefix: str,
    ) -> None:
        self.instrument, self.limits, self.state, self.account = instrument, limits, state, account
        self.kill, self.id_prefix = kill, id_prefix
        self.stage, self.breach = state.stage, state.breach
        if account_state is not None and account_state.stage.severity > self.stage.severity:
            self.stage, self.breach = account_state.stage, account_state.breach
        self.mark = account.marks[instrument.symbol]
        self.free_quote = account.free(account.quote)
        self.free_base = account.free(instrument.base)
        self.added = ZERO  # quote value of the buys accepted so far this tick
        self.requests: list[OrderRequest] = []
        self.cancels: list[str] = []
        self.rejections: list[Rejection] = []
        self.index = 0
        self.side = "buy"

    def intent(self, index: int, intent: OrderIntent) -> None:
        self.index, self.side = index, intent.side
        if intent.action == "cancel":
            self.cancels.append(intent.tag)
            return
        scope = self.kill.engaged
        if scope is not None:
            self.reject("kill_switch", f"the {scope} kill switch is on")
        elif self.stage is Stage.HALTED:
            self.reject("stage", f"trading is halted ({self._why()})")
        elif self.limits.whitelist and self.instrument.symbol not in self.limits.whitelist:
            self.reject("instrument_whitelist", f"{self.instrument.symbol} is not whitelisted")
        elif intent.side == "sell":
            self.sell(intent)
        elif self.stage is Stage.REDUCING:
            self.reject("stage", f"only exits are allowed while reducing ({self._why()})")
        else:
            self.buy(intent)

    def _why(self) -> str:
        return "no breach recorded" if self.breach is None else self.breach.reason

    def reject(self, limit: str, reason: str) -> None:
        symbol = self.instrument.symbol
        self.rejections.append(Rejection(self.index, self.side, symbol, limit, reason))

    def sell(self, intent: OrderIntent) -> None:
        held = self.free_base
        if held <= 0:
            self.reject("no_position", f"no free {self.instrument.base} to sell")
            return
        wanted = held
        if intent.size is not None:
            wanted = to_decimal(intent.size)
        elif intent.fraction is not None:
            wanted = held * to_decimal(intent.fraction)
        elif intent.amount is not None:
            wanted = to_decimal(intent.amount) / self._price(intent)
        qty = self.instrument.floor_qty(min(wanted, held))
        if self._big_enough(qty, intent):
            self.free_base -= qty
            self.send(intent, qty=qty)

    def buy(self, intent: OrderIntent) -> None:
        limits, account = self.limits, self.account
        cap = limits.max_trades_per_day
        if cap is not None and self.state.trades_today >= cap:
            self.reject("max_trades_per_day", f"{cap} trades already today")
            return
        equity = account.equity
        price = self._price(intent)
        explicit = _explicit_amount(intent, price, self.free_quote)
        amount = self._rule_amount(equity, price) if explicit is None else explicit
        held = account.position_value(self.instrument.symbol) + self.added
        if limits.position_pct is not None:
            room = equity * limits.position_pct - held
            if (explicit is not None and explicit > room) or room <= 0:
                self.reject(
                    "max_position_size",
                    f"a buy of {amount:.2f} {account.quote} would take the position over "
                    f"{pct(limits.position_pct)} of equity ({equity * limits.position_pct:.2f})",
                )
                return
            amount = min(amount, room)
        if not self._within_exposure(amount, equity):
            return
        if intent.type == "market" and intent.size is None:
            quantum = self.instrument.quote_precision
            quote_qty = (amount / quantum).to_integral_value(ROUND_DOWN) * quantum
            if quote_qty < max(self.instrument.min_notional, quantum):
                self.reject("min_notional", f"{quote_qty} {account.quote} is below the minimum")
                return
            self.send(intent, quote_qty=quote_qty)
        else:
            qty = self.instrument.floor_qty(amount / price)
            if not self._big_enough(qty, intent):
                return
            self.send(intent, qty=qty)
        self.added += amount
        self.state = replace(self.state, trades_today=self.state.trades_today + 1)

    def _rule_amount(self, equity: Decimal, price: Decimal) -> Decimal:
        limits = self.limits
        if limits.sizing == "all_in":
            return self.free_quote
        if limits.sizing == "fixed":
            assert limits.fixed_amount is not None  # RiskLimits checks it
            return limits.fixed_amount
        if limits.sizing == "percent":
            assert limits.position_pct is not None
            return equity * limits.position_pct
        assert limits.stop_loss is not None
        return equity * limits.risk_per_trade / limits.stop_loss

    def _within_exposure(self, amount: Decimal, equity: Decimal) -> bool:
        after = self.account.gross_exposure + self.added + amount
        limits = self.limits
        if limits.max_exposure is not None and after > equity * limits.max_exposure:
            self.reject(
                "max_exposure",
                f"positions would be worth {after:.2f}, over {pct(limits.max_exposure)} "
                f"of equity ({equity * limits.max_exposure:.2f})",
            )
            return False
        if after > equity * limits.leverage:
            self.reject("leverage", f"positions would exceed {limits.leverage}x equity")
            return False
        return True

    def _price(self, intent: OrderIntent) -> Decimal:
        return self.mark if intent.limit_price is None else self._limit(intent)

    def _limit(self, intent: OrderIntent) -> Decimal:
        # On the tick, never worse for the trader than asked: buys down, sells up.
        tick = self.instrument.tick_size
        rounding = ROUND_DOWN if intent.side == "buy" else ROUND_UP
        ticks = (to_decimal(intent.limit_price or 0) / tick).to_integral_value(rounding)
        return ticks * tick

    def _big_enough(self, qty: Decimal, intent: OrderIntent) -> bool:
        instrument = self.instrument
        notional = qty * self._price(intent)
        if qty <= 0 or qty < instrument.min_qty or notional < instrument.min_notional:
            self.reject(
                "min_notional",
                f"{qty} {instrument.base} is below the market minimum "
                f"({instrument.min_qty} {instrument.base}, {instrument.min_notional} notional)",
            )
            return False
        return True

    def send(
        self, intent: OrderIntent, *, qty: Decimal | None = None, quote_qty: Decimal | None = None
    ) -> None:
        limit = None if intent.limit_price is None else self._limit(intent)
        self.requests.append(
            OrderRequest(
                f"{self.id_prefix}-{self.index}",
                self.instrument.symbol,
                intent.side,
                intent.type,
                qty=qty,
                quote_qty=quote_qty,
                limit_price=limit,
                tag=intent.tag,
                reason=intent.reason,
            )
        )


def _explicit_amount(intent: OrderIntent, price: Decimal, free_quote: Decimal) -> Decimal | None:
    if intent.size is not None:
        return to_decimal(intent.size) * price
    if intent.amount is not None:
        return to_decimal(intent.amount)
    if intent.fraction is not None:
        return free_quote * to_decimal(intent.fraction)
    return None
