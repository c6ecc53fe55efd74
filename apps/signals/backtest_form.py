"""The small form of "Backtest these alerts": where the candles come from and the pair
settings a recorded-alerts backtest takes (the rest are the backtests app's defaults)."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from apps.backtests.forms import TIMEFRAMES
from apps.signals.backtest import DEFAULT_TIMEFRAME, SignalBacktestInput

HUNDRED = Decimal(100)


class SignalBacktestForm(forms.Form):
    exchange = forms.CharField(
        max_length=32, help_text="ccxt id of the exchange whose stored candles are replayed."
    )
    timeframe = forms.ChoiceField(
        choices=[(t, t) for t in TIMEFRAMES],
        initial=DEFAULT_TIMEFRAME,
        help_text="Candle size: each alert fills at the open of the bar after its own.",
    )
    initial_capital = forms.DecimalField(
        min_value=Decimal("0.01"),
        max_digits=38,
        decimal_places=8,
        initial=Decimal(10_000),
        help_text="Starting cash per symbol, in the quote currency.",
    )
    fee = forms.DecimalField(
        label="Fee (%)",
        min_value=Decimal(0),
        max_value=Decimal("9.99"),
        max_digits=12,
        decimal_places=6,
        initial=Decimal("0.1"),
        help_text="Paid on each fill.",
        widget=forms.NumberInput(attrs={"step": "any"}),
    )

    def backtest_input(self) -> SignalBacktestInput:
        data = self.cleaned_data
        return SignalBacktestInput(
            exchange=data["exchange"],
            timeframe=data["timeframe"],
            initial_capital=data["initial_capital"],
            fee=data["fee"] / HUNDRED,
        )
