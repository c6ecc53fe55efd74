"""The small forms of the recorded alerts' page: "Backtest these alerts" (where the candles
come from and the pair settings a recorded-alerts backtest takes, as the backtest create
form has them; the other settings keep the backtests app's defaults; alerts are market
orders, so they pay the taker fee) and "Replay on a paper bot" (the candles, the replay's
speed and the paper money it trades)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms

from apps.backtests.forms import HUNDRED, BacktestPairForm
from apps.exchanges.models import ExchangeAccount
from apps.signals.backtest import DEFAULT_TIMEFRAME, SignalBacktestInput
from apps.signals.replay import DEFAULT_SECONDS_PER_CANDLE, SignalReplayInput

PAIR_FIELDS = BacktestPairForm.base_fields


EXCHANGE_FIELD = forms.CharField(
    max_length=32, help_text="ccxt id of the exchange whose stored candles are replayed."
)


class SignalBacktestForm(forms.Form):
    exchange = EXCHANGE_FIELD
    timeframe = PAIR_FIELDS["timeframe"]
    initial_capital = PAIR_FIELDS["initial_capital"]
    taker_fee = PAIR_FIELDS["taker_fee"]

    def backtest_input(self) -> SignalBacktestInput:
        data = self.cleaned_data
        return SignalBacktestInput(
            exchange=data["exchange"],
            timeframe=data["timeframe"] or DEFAULT_TIMEFRAME,
            initial_capital=data["initial_capital"],
            fee=data["taker_fee"] / HUNDRED,
        )


class SignalReplayForm(forms.Form):
    exchange = EXCHANGE_FIELD
    timeframe = PAIR_FIELDS["timeframe"]
    seconds_per_candle = forms.DecimalField(
        min_value=Decimal("0.1"),
        max_value=Decimal(3600),
        decimal_places=2,
        initial=DEFAULT_SECONDS_PER_CANDLE,
        label="Seconds per candle",
        help_text=(
            "How fast the replay runs: 1 plays a day of hourly candles in 24 s (a bot ticks "
            "at most once a scheduler beat, every second by default)."
        ),
    )
    account = forms.ModelChoiceField(
        queryset=ExchangeAccount.objects.none(),  # the user's paper accounts, in __init__
        required=False,
        empty_label="A new paper account",
        label="Paper account",
        help_text="Trade on one of your paper accounts, or on a new one with the capital below.",
    )
    initial_capital = forms.DecimalField(
        min_value=Decimal(1),
        max_digits=38,
        decimal_places=8,
        initial=Decimal(10_000),
        label="Capital of a new account",
        help_text="Quote currency the new paper account starts with.",
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        accounts = ExchangeAccount.objects.filter(owner=user, mode=ExchangeAccount.Mode.PAPER)
        self.fields["account"].queryset = accounts.order_by("label")  # type: ignore[attr-defined]

    def replay_input(self) -> SignalReplayInput:
        data = self.cleaned_data
        account = data["account"]
        return SignalReplayInput(
            exchange=data["exchange"].strip().lower(),
            timeframe=data["timeframe"] or DEFAULT_TIMEFRAME,
            seconds_per_candle=data["seconds_per_candle"],
            account_id=None if account is None else account.pk,
            initial_capital=data["initial_capital"],
        )
