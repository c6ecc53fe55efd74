"""The signal bot create form; the service re-validates everything."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from apps.accounts.models import User
from apps.bots.models import RiskProfileName
from apps.exchanges.models import ExchangeAccount
from apps.signals.models import TRADINGVIEW_IPS, SizeMode
from apps.signals.services import SignalBotInput


class SignalBotForm(forms.Form):
    name = forms.CharField(max_length=100)
    account = forms.ModelChoiceField(
        queryset=ExchangeAccount.objects.none(),
        help_text="A paper account (balances shared with its other bots) or an exchange "
        "testnet account (orders go to the testnet).",
    )
    symbols = forms.CharField(
        max_length=1000,
        help_text="The instrument whitelist, comma separated: BTC/USDT, ETH/USDT. "
        "An alert for anything else is refused.",
    )
    risk_profile = forms.ChoiceField(choices=RiskProfileName.choices)
    size_mode = forms.ChoiceField(
        choices=SizeMode.choices,
        initial=SizeMode.QUOTE,
        label="Default size",
        help_text="Used when an alert carries no contracts, quote_amount or equity_pct.",
    )
    size_value = forms.DecimalField(
        required=False, min_value=Decimal(0), max_digits=38, decimal_places=18, initial=100
    )
    passphrase = forms.CharField(
        required=False,
        max_length=200,
        widget=forms.PasswordInput,
        help_text="Leave empty to get a random one (shown once).",
    )
    tradingview_only = forms.BooleanField(
        required=False,
        label="Only accept TradingView's sender addresses",
        help_text=", ".join(TRADINGVIEW_IPS),
    )

    def __init__(self, *args: object, user: User, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        field = self.fields["account"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = ExchangeAccount.objects.filter(
            owner=user, mode__in=("paper", "testnet")
        ).only("id", "label", "exchange")

    def signal_bot_input(self) -> SignalBotInput:
        data = self.cleaned_data
        return SignalBotInput(
            name=data["name"],
            account_id=data["account"].pk,
            symbols=[s.strip() for s in data["symbols"].split(",") if s.strip()],
            risk_profile=data["risk_profile"],
            size_mode=data["size_mode"],
            size_value=data["size_value"],
            passphrase=data["passphrase"],
            ip_allowlist=TRADINGVIEW_IPS if data["tradingview_only"] else (),
        )
