"""The new-bot form. Risk overrides are typed as percentages (2 = 2 %) and left empty to
keep the profile's value; the service checks every value against the profile's cap."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms

from apps.bots.models import Bot, RiskProfileName
from apps.common.errors import InputInvalid

HUNDRED = Decimal(100)
TIMEFRAMES = ["1m", "5m", "15m", "30m", "1h", "4h", "1d"]
# Risk settings offered as overrides, typed in percent.
PERCENT_OVERRIDES = (
    "risk_per_trade",
    "stop_loss",
    "position_pct",
    "daily_loss_limit",
    "max_drawdown",
)
SIZING_CHOICES = [
    ("", "Profile default (risk % at the stop)"),
    ("risk", "Risk % of equity at the stop distance"),
    ("percent", "Position % of equity"),
    ("all_in", "All free cash (as a backtest)"),
]


def _percent(label: str, help_text: str) -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        required=False,
        min_value=Decimal("0.0001"),
        max_value=HUNDRED,
        decimal_places=4,
        help_text=help_text,
    )


class BotForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="How the bot shows up in your list.")
    strategy_version_id = forms.TypedChoiceField(
        label="Strategy version", coerce=int, help_text="The version the bot trades."
    )
    account_id = forms.TypedChoiceField(
        label="Paper account", coerce=int, help_text="Positions are shared per account."
    )
    symbols = forms.CharField(
        initial="BTC/USDT", help_text="One or more ccxt symbols, separated by commas."
    )
    timeframe = forms.ChoiceField(
        choices=[(t, t) for t in TIMEFRAMES], initial="1h", help_text="One tick per closed candle."
    )
    feed = forms.ChoiceField(
        choices=Bot.Feed.choices,
        initial=Bot.Feed.REPLAY,
        help_text="Replay runs over stored candles at an accelerated speed; live polls the "
        "exchange.",
    )
    replay_start = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Replay: the first candle (UTC). Empty: the last 30 days of stored candles.",
    )
    replay_seconds_per_candle = forms.DecimalField(
        initial=Decimal(2),
        min_value=Decimal("0.1"),
        decimal_places=3,
        help_text=(
            "Replay: wall-clock seconds per candle (a bot ticks at most once a scheduler "
            "beat, every second by default)."
        ),
    )
    risk_profile = forms.ChoiceField(
        choices=RiskProfileName.choices,
        initial=RiskProfileName.CONSERVATIVE,
        help_text="Sets size, stop, trade-count and drawdown limits; override any below, "
        "up to the profile's cap.",
    )
    sizing = forms.ChoiceField(choices=SIZING_CHOICES, required=False)
    risk_per_trade = _percent("Risk per trade (%)", "Of equity, lost if the stop is hit.")
    stop_loss = _percent("Stop-loss (%)", "Distance below the entry.")
    position_pct = _percent("Max position (%)", "One symbol's value, of equity.")
    daily_loss_limit = _percent("Daily loss limit (%)", "Since 00:00 UTC; then only exits.")
    max_drawdown = _percent("Max drawdown (%)", "From the peak; then the bot halts.")
    max_trades_per_day = forms.IntegerField(required=False, min_value=1)
    leverage = forms.DecimalField(
        initial=Decimal(1), min_value=Decimal(1), decimal_places=2, help_text="Spot: 1."
    )
    capital_limit = forms.DecimalField(
        required=False, min_value=Decimal(0), help_text="Most quote the bot may commit; empty: all."
    )
    cooldown_after_losses = forms.IntegerField(
        required=False, min_value=1, help_text="Pause new entries after this many losses in a row."
    )
    cooldown_bars = forms.IntegerField(initial=0, min_value=0, help_text="For this many candles.")
    assume_position = forms.BooleanField(
        required=False, help_text="Treat a holding already on the account as this bot's."
    )
    close_on_stop = forms.BooleanField(
        required=False, initial=True, help_text="Default of the Stop button's choice."
    )

    def __init__(self, *args: Any, versions: Any, accounts: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["strategy_version_id"].choices = [
            (v.pk, f"{v.strategy.name} v{v.number}") for v in versions
        ]
        self.fields["account_id"].choices = [
            (a.pk, f"{a.label} ({a.exchange}, {a.mode})") for a in accounts
        ]

    def bot_input(self) -> dict[str, Any]:
        """The cleaned data as bot_create's keyword arguments."""
        data = dict(self.cleaned_data)
        overrides: dict[str, Any] = {}
        for name in PERCENT_OVERRIDES:
            value = data.pop(name)
            if value is not None:
                overrides[name] = value / HUNDRED
        sizing = data.pop("sizing")
        if sizing:
            overrides["sizing"] = sizing
        data["risk_overrides"] = overrides
        data["kind"] = Bot.Kind.STRATEGY
        data["cooldown_bars"] = data["cooldown_bars"] or 0
        return data

    def apply_errors(self, error: InputInvalid) -> None:
        for path, message in error.problems:
            name = path.removeprefix("risk_overrides.")
            self.add_error(name if name in self.fields else None, message)
