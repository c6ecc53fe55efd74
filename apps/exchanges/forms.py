from decimal import Decimal, InvalidOperation

from django import forms

from apps.engine.brokers.ccxt_live import exchange_ids
from apps.exchanges.models import ExchangeAccount

BALANCES_HELP = "Paper accounts only: asset=amount pairs, e.g. “USDT=10000, BTC=0.5”."


def _exchange_choices() -> list[tuple[str, str]]:
    return [(exchange_id, exchange_id) for exchange_id in exchange_ids()]


def _secret_input(autocomplete: str = "off") -> forms.PasswordInput:
    # render_value=False: a submitted key is never echoed back into the page.
    return forms.PasswordInput(render_value=False, attrs={"autocomplete": autocomplete})


def parse_balances(text: str) -> dict[str, Decimal]:
    """Parse “USDT=10000, BTC=0.5” into {"USDT": Decimal("10000"), "BTC": Decimal("0.5")}."""
    balances: dict[str, Decimal] = {}
    for item in text.replace("\n", ",").split(","):
        if not item.strip():
            continue
        asset, separator, amount = item.partition("=")
        if not separator or not asset.strip():
            raise forms.ValidationError(f"“{item.strip()}” is not in the form ASSET=amount.")
        try:
            balances[asset.strip().upper()] = Decimal(amount.strip())
        except InvalidOperation:
            raise forms.ValidationError(f"“{amount.strip()}” is not a number.") from None
    return balances


class KeysForm(forms.Form):
    api_key = forms.CharField(
        label="API key", required=False, strip=True, widget=_secret_input(), max_length=500
    )
    api_secret = forms.CharField(
        label="API secret", required=False, strip=True, widget=_secret_input(), max_length=500
    )
    passphrase = forms.CharField(
        required=False,
        strip=True,
        widget=_secret_input(),
        max_length=500,
        help_text="Only for exchanges that issue one with the key (e.g. okx, coinbase).",
    )


class ExchangeAccountCreateForm(KeysForm):
    exchange = forms.ChoiceField(choices=_exchange_choices)
    label = forms.CharField(max_length=100, help_text="Your name for it, e.g. “Binance main”.")
    mode = forms.ChoiceField(
        choices=ExchangeAccount.Mode.choices,
        initial=ExchangeAccount.Mode.PAPER,
        help_text="Paper simulates trades with made-up balances; testnet and live need a "
        "trade-only API key.",
    )
    initial_balances = forms.CharField(
        required=False, initial="USDT=10000", help_text=BALANCES_HELP
    )

    field_order = ["exchange", "label", "mode", "api_key", "api_secret", "passphrase"]

    def clean_initial_balances(self) -> dict[str, Decimal] | None:
        text = self.cleaned_data["initial_balances"].strip()
        return parse_balances(text) if text else None


class KeysRotateForm(KeysForm):
    """The replacement key; checked with the exchange exactly like a new one."""
