"""The small form of "Backtest these alerts": where the candles come from and the pair
settings a recorded-alerts backtest takes, as the backtest create form has them (the
other settings keep the backtests app's defaults; alerts are market orders, so they pay
the taker fee)."""

from __future__ import annotations

from django import forms

from apps.backtests.forms import HUNDRED, BacktestPairForm
from apps.signals.backtest import DEFAULT_TIMEFRAME, SignalBacktestInput

PAIR_FIELDS = BacktestPairForm.base_fields


class SignalBacktestForm(forms.Form):
    exchange = forms.CharField(
        max_length=32, help_text="ccxt id of the exchange whose stored candles are replayed."
    )
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
