"""The create form: task fields plus a formset of pairs. Rates are typed as percentages."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.forms import formset_factory

from apps.backtests.models import BacktestPair, BacktestTask, Side
from apps.backtests.services import MAX_PAIRS, PairInput

HUNDRED = Decimal(100)
TIMEFRAMES = ["1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w"]
# Futures fields left empty take the model's defaults.
FUTURES_DEFAULTS: dict[str, Decimal] = {
    name: BacktestPair._meta.get_field(name).default
    for name in ("leverage", "funding_rate", "maintenance_margin")
}


def _date_widget() -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class BacktestTaskForm(forms.Form):
    name = forms.CharField(
        max_length=120, help_text="How this run shows up in your list, e.g. “SMA cross, 2020-21”."
    )
    exchange = forms.CharField(
        max_length=32,
        initial="binance",
        help_text="ccxt id of the exchange whose stored candles are replayed.",
    )
    market_type = forms.ChoiceField(
        choices=BacktestTask.MarketType.choices,
        initial=BacktestTask.MarketType.SPOT,
        help_text=(
            "Spot: long only, with your own cash. Futures: margin x leverage, long or short, "
            "funding every 8 h and isolated-margin liquidation."
        ),
    )
    start = forms.DateField(widget=_date_widget(), help_text="First day simulated, from 00:00 UTC.")
    end = forms.DateField(widget=_date_widget(), help_text="Last day simulated, through 23:59 UTC.")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            self.add_error("end", "must be on or after the start")
        return data

    def start_end(self) -> tuple[datetime, datetime]:
        """The UTC range [start 00:00, day after end 00:00)."""
        data = self.cleaned_data
        start = datetime.combine(data["start"], time(0), tzinfo=UTC)
        end = datetime.combine(data["end"] + timedelta(days=1), time(0), tzinfo=UTC)
        return start, end


def _percent(
    label: str,
    help_text: str,
    *,
    initial: str | None = None,
    top: str = "99.99",
    bottom: str = "0",
    required: bool | None = None,
):
    return forms.DecimalField(
        label=f"{label} (%)",
        min_value=Decimal(bottom),
        max_value=Decimal(top),
        max_digits=12,
        decimal_places=6,
        required=initial is not None if required is None else required,
        initial=initial,
        help_text=help_text,
        widget=forms.NumberInput(attrs={"step": "any"}),
    )


class BacktestPairForm(forms.Form):
    symbol = forms.CharField(
        max_length=64,
        help_text="ccxt symbol with stored candles, e.g. BTC/USDT.",
        widget=forms.TextInput(attrs={"list": "symbol-options", "autocomplete": "off"}),
    )
    timeframe = forms.ChoiceField(
        choices=[(t, t) for t in TIMEFRAMES], initial="1h", help_text="Candle size to replay."
    )
    strategy_version = forms.ModelChoiceField(
        queryset=None,  # set per user in __init__
        empty_label="Choose a strategy version",
        help_text="Backtests always run one exact, immutable version.",
    )
    initial_capital = forms.DecimalField(
        min_value=Decimal("0.01"),
        max_digits=38,
        decimal_places=8,
        initial=Decimal(10_000),
        help_text="Starting cash in the quote currency.",
    )
    order_type = forms.ChoiceField(
        choices=BacktestPair.OrderType.choices,
        initial=BacktestPair.OrderType.MARKET,
        help_text=(
            "Market orders fill at the next bar's open; limit orders rest for one bar at "
            "the signal bar's close moved by the offset."
        ),
    )
    limit_offset = _percent(
        "Limit offset",
        "Limit orders: buys rest this far below the signal close, sells this far above. "
        "Unfilled, an entry is skipped and an exit becomes a market order.",
        initial="0",
        top="49.99",
        required=False,
    )
    taker_fee = _percent("Taker fee", "Paid on each market fill.", initial="0.1", top="9.99")
    maker_fee = _percent("Maker fee", "Paid on each limit fill.", initial="0.1", top="9.99")
    slippage = _percent("Slippage", "Price worsened on each fill.", initial="0", top="9.99")
    stop_loss = _percent("Stop-loss", "Below the entry price; empty for none.")
    take_profit = _percent("Take-profit", "Above the entry price; empty for none.")
    trailing_stop = _percent("Trailing stop", "Below the highest high since entry.")
    sizing = forms.ChoiceField(
        choices=BacktestPair.Sizing.choices,
        initial=BacktestPair.Sizing.ALL_IN,
        help_text="All in, a % of equity, a fixed amount, or risk % of equity at the stop.",
    )
    size_value = forms.DecimalField(
        min_value=Decimal(0),
        max_digits=38,
        decimal_places=8,
        initial=Decimal(1),
        required=False,
        help_text="% sizing and risk: a fraction (0.02 = 2 %); fixed: a quote amount.",
        widget=forms.NumberInput(attrs={"step": "any"}),
    )
    max_trades_per_day = forms.IntegerField(
        min_value=1, required=False, help_text="Entries allowed per UTC day; empty for no limit."
    )
    max_drawdown_stop = _percent(
        "Max drawdown stop", "Stop trading once equity falls this far below its peak."
    )
    leverage = forms.DecimalField(
        min_value=Decimal(1),
        max_value=Decimal(125),
        max_digits=6,
        decimal_places=2,
        initial=Decimal(1),
        required=False,
        help_text="Futures: the position is margin x leverage; 1 borrows nothing.",
        widget=forms.NumberInput(attrs={"step": "any"}),
    )
    direction = forms.ChoiceField(
        choices=Side.choices,
        initial=Side.LONG,
        required=False,
        help_text="Futures: a short sells on the entry signal and buys back on the exit.",
    )
    funding_rate = _percent(
        "Funding rate",
        "Futures: every 8 h on the position's value; longs pay it when positive, "
        "shorts when negative.",
        initial="0.01",
        top="1",
        bottom="-1",
        required=False,
    )
    maintenance_margin = _percent(
        "Maintenance margin",
        "Futures, isolated margin: liquidated (the margin is lost) when the margin left "
        "falls to this share of the position.",
        initial="0.5",
        top="49.99",
        required=False,
    )

    def __init__(self, *args: Any, versions: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["strategy_version"]
        field.queryset = versions
        field.label_from_instance = lambda v: f"{v.strategy.name} · v{v.number}"

    def pair_input(self) -> PairInput:
        data = self.cleaned_data

        def fraction(name: str) -> Decimal | None:
            value = data.get(name)
            return None if value is None else value / HUNDRED

        def fraction_or_default(name: str) -> Decimal:
            # Zero is a real value here (no funding, no maintenance margin); empty is not.
            value = fraction(name)
            return FUTURES_DEFAULTS[name] if value is None else value

        return PairInput(
            symbol=data["symbol"],
            timeframe=data["timeframe"],
            strategy_version_id=data["strategy_version"].pk,
            initial_capital=data["initial_capital"],
            order_type=data["order_type"],
            maker_fee=fraction("maker_fee") or Decimal(0),
            taker_fee=fraction("taker_fee") or Decimal(0),
            slippage=fraction("slippage") or Decimal(0),
            stop_loss=fraction("stop_loss"),
            take_profit=fraction("take_profit"),
            trailing_stop=fraction("trailing_stop"),
            sizing=data["sizing"],
            size_value=data["size_value"] if data.get("size_value") is not None else Decimal(1),
            max_trades_per_day=data.get("max_trades_per_day"),
            max_drawdown_stop=fraction("max_drawdown_stop"),
            limit_offset=fraction("limit_offset") or Decimal(0),
            leverage=data.get("leverage") or FUTURES_DEFAULTS["leverage"],
            direction=data.get("direction") or Side.LONG,
            funding_rate=fraction_or_default("funding_rate"),
            maintenance_margin=fraction_or_default("maintenance_margin"),
        )


BasePairFormSet = formset_factory(
    BacktestPairForm,
    extra=0,
    min_num=1,
    max_num=MAX_PAIRS,
    validate_min=True,
    validate_max=True,
)
PAIR_PREFIX = "pairs"


def pair_formset(*, versions: Any, data: Any = None, initial: list | None = None):
    return BasePairFormSet(
        data, initial=initial, prefix=PAIR_PREFIX, form_kwargs={"versions": versions}
    )


def pair_rows_from_post(data: Any) -> list[dict[str, Any]]:
    """The pairs typed so far, one dict per form, for re-rendering after add/remove."""
    try:
        total = min(int(data.get(f"{PAIR_PREFIX}-TOTAL_FORMS", 1)), MAX_PAIRS)
    except ValueError:
        total = 1
    names = list(BacktestPairForm.base_fields)
    return [
        {name: data.get(f"{PAIR_PREFIX}-{index}-{name}", "") for name in names}
        for index in range(total)
    ]


def default_pair_row(*, symbol: str = "", version_id: int | None = None) -> dict[str, Any]:
    row = {name: field.initial for name, field in BacktestPairForm.base_fields.items()}
    row["symbol"] = symbol
    row["strategy_version"] = version_id
    return row


def default_range(latest: date | None) -> dict[str, date]:
    end = latest or datetime.now(tz=UTC).date()
    return {"start": end - timedelta(days=364), "end": end}
