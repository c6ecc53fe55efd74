"""The create form: what to search (a range per template parameter, pre-filled around the
version's values), how, on which candles, and the execution settings of a backtest pair."""

from __future__ import annotations

import copy
import math
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django import forms

from apps.backtests.execution import EXECUTION_FIELDS
from apps.backtests.forms import HUNDRED, BacktestPairForm
from apps.engine.optimize import SCORE_METRICS
from apps.engine.templates import ParamSpec
from apps.optimizations.models import METRIC_LABELS, OptimizationTask
from apps.optimizations.services import MAX_COMBINATIONS, OptimizationInput

# Values a suggested range offers per parameter.
SUGGESTED_STEPS = 6


def _date_widget() -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _bars(label: str, help_text: str, initial: int | None = None) -> forms.IntegerField:
    return forms.IntegerField(
        label=label, min_value=2, required=False, initial=initial, help_text=help_text
    )


def _number_input() -> forms.NumberInput:
    return forms.NumberInput(attrs={"step": "any"})


def _nice(value: float, spec: ParamSpec) -> float:
    if spec.type == "int":
        return round(value)
    return float(f"{value:.2g}")


def suggested_range(spec: ParamSpec, value: float) -> dict[str, float]:
    """Half to twice the version's value, inside the parameter's bounds, in a few steps
    that end on the maximum."""
    low = _nice(max(spec.minimum, value / 2), spec)
    high = _nice(min(spec.maximum, value * 2), spec)
    step = _nice((high - low) / SUGGESTED_STEPS, spec) or (1 if spec.type == "int" else 0.1)
    if spec.type == "int":
        step = max(1, math.ceil((high - low) / SUGGESTED_STEPS))
    steps = math.floor((high - low) / step + 1e-9)
    return {"min": low, "max": _nice(low + steps * step, spec), "step": step}


class OptimizationForm(forms.Form):
    strategy_version = forms.ModelChoiceField(
        queryset=None,  # set per user in __init__
        empty_label="Choose a template version",
        help_text="A template version: its parameters have types and bounds to search within.",
    )
    series = forms.ModelChoiceField(
        queryset=None,  # the stored series, set in __init__
        label="Candles",
        empty_label="Choose stored candles",
        help_text="Exchange, symbol and timeframe of candles already stored (Market data).",
    )
    start = forms.DateField(widget=_date_widget(), help_text="First day searched, from 00:00 UTC.")
    end = forms.DateField(widget=_date_widget(), help_text="Last day searched, through 23:59 UTC.")
    method = forms.ChoiceField(
        choices=OptimizationTask.Method.choices,
        initial=OptimizationTask.Method.GRID,
        help_text="Grid tries every combination; random tries a sample of them; walk-forward "
        "fits on rolling in-sample windows and scores each winner on the window after it.",
    )
    metric = forms.ChoiceField(
        choices=[(name, METRIC_LABELS[name]) for name in SCORE_METRICS],
        initial="sharpe",
        label="Rank by",
        help_text="Higher is better. Walk-forward compares in-sample and out-of-sample by it, "
        "so prefer a ratio that does not grow with the window's length (Sharpe, Sortino).",
    )
    samples = forms.IntegerField(
        min_value=1,
        max_value=MAX_COMBINATIONS,
        required=False,
        initial=100,
        help_text=f"Random search: how many distinct combinations to try (up to "
        f"{MAX_COMBINATIONS:,}).",
    )
    seed = forms.IntegerField(
        min_value=0,
        required=False,
        help_text="Random search: the same seed draws the same sample. Empty: a new one.",
    )
    in_sample = _bars("In-sample bars", "Walk-forward: bars each window fits on.", 2160)
    out_of_sample = _bars(
        "Out-of-sample bars", "Walk-forward: bars the winner is then tested on.", 720
    )
    step = _bars("Step (bars)", "Walk-forward: how far windows move; empty = out-of-sample.")
    anchored = forms.BooleanField(
        required=False, help_text="Walk-forward: every in-sample window starts at the first bar."
    )
    overfit_threshold = forms.DecimalField(
        label="Overfitting warning below (%)",
        min_value=Decimal(1),
        max_value=HUNDRED,
        initial=Decimal(50),
        help_text="Walk-forward: warn when the out-of-sample score is less than this share of "
        "the in-sample score.",
    )

    def __init__(
        self,
        *args: Any,
        versions: Any,
        series: Any,
        param_specs: list[ParamSpec] | None = None,
        param_values: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["strategy_version"].queryset = versions
        self.fields["strategy_version"].label_from_instance = lambda v: (
            f"{v.strategy.name} · v{v.number} ({v.template})"
        )
        self.fields["series"].queryset = series
        self.fields["series"].label_from_instance = _series_label
        # A backtest pair's fields, with the same labels, help and defaults.
        for name in EXECUTION_FIELDS:
            self.fields[name] = copy.deepcopy(BacktestPairForm.base_fields[name])
        self.param_specs = param_specs or []
        for index, spec in enumerate(self.param_specs):
            value = (param_values or {}).get(spec.name, spec.default)
            self._add_param_fields(spec, value, vary=index < 2)

    def _add_param_fields(self, spec: ParamSpec, value: float, *, vary: bool) -> None:
        suggested = suggested_range(spec, value)
        bounds = f"{spec.minimum:g} to {spec.maximum:g}"
        whole = "Whole numbers, " if spec.type == "int" else "From "
        name = spec.name
        self.fields[f"vary_{name}"] = forms.BooleanField(
            required=False,
            initial=vary,
            label=name,
            help_text=f"{spec.help} {whole}{bounds}; this version uses {value:g}.",
        )
        for part in ("min", "max", "step"):
            self.fields[f"{part}_{name}"] = forms.FloatField(
                required=False, initial=suggested[part], widget=_number_input()
            )
        self.fields[f"values_{name}"] = forms.CharField(
            required=False,
            label="or values",
            widget=forms.TextInput(attrs={"placeholder": "e.g. 5, 8, 13"}),
        )

    def param_rows(self) -> list[dict[str, Any]]:
        """One row per template parameter, its bound fields, for the template."""
        return [
            {
                "spec": spec,
                "vary": self[f"vary_{spec.name}"],
                "min": self[f"min_{spec.name}"],
                "max": self[f"max_{spec.name}"],
                "step": self[f"step_{spec.name}"],
                "values": self[f"values_{spec.name}"],
            }
            for spec in self.param_specs
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            self.add_error("end", "must be on or after the start")
        return data

    def _space(self) -> dict[str, Any]:
        data, space = self.cleaned_data, {}
        for spec in self.param_specs:
            name = spec.name
            if not data.get(f"vary_{name}"):
                continue
            listed = (data.get(f"values_{name}") or "").strip()
            if listed:
                space[name] = [_parse_number(part) for part in listed.split(",") if part.strip()]
            else:
                space[name] = {part: data.get(f"{part}_{name}") for part in ("min", "max", "step")}
        return space

    def optimization_input(self) -> OptimizationInput:
        data = self.cleaned_data
        series = data["series"]
        start = datetime.combine(data["start"], time(0), tzinfo=UTC)
        end = datetime.combine(data["end"] + timedelta(days=1), time(0), tzinfo=UTC)

        def fraction(name: str) -> Decimal | None:
            value = data.get(name)
            return None if value is None else value / HUNDRED

        return OptimizationInput(
            strategy_version_id=data["strategy_version"].pk,
            exchange=series.exchange,
            symbol=series.symbol,
            timeframe=series.timeframe,
            start=start,
            end=end,
            space=self._space(),
            method=data["method"],
            metric=data["metric"],
            samples=data.get("samples"),
            seed=data.get("seed"),
            in_sample=data.get("in_sample"),
            out_of_sample=data.get("out_of_sample"),
            step=data.get("step"),
            anchored=bool(data.get("anchored")),
            overfit_threshold=data["overfit_threshold"] / HUNDRED,
            initial_capital=data["initial_capital"],
            taker_fee=fraction("taker_fee") or Decimal(0),
            slippage=fraction("slippage") or Decimal(0),
            stop_loss=fraction("stop_loss"),
            take_profit=fraction("take_profit"),
            trailing_stop=fraction("trailing_stop"),
            sizing=data["sizing"],
            size_value=data["size_value"] if data.get("size_value") is not None else Decimal(1),
            max_trades_per_day=data.get("max_trades_per_day"),
            max_drawdown_stop=fraction("max_drawdown_stop"),
        )

    def add_service_error(self, path: str, message: str) -> None:
        """Put a service problem next to its input: `space.fast` goes to the fast row, the
        candle series' parts to the series select."""
        name = path.removeprefix("space.")
        if path in ("exchange", "symbol", "timeframe"):
            name = "series"
        for candidate in (path, f"vary_{name}", name):
            if candidate in self.fields:
                self.add_error(candidate, message)
                return
        self.add_error(None, message)


def _parse_number(text: str) -> Any:
    """A typed value for the engine, which names the parameter when it refuses it."""
    try:
        number = float(text)
    except ValueError:
        return text.strip()
    return int(number) if number.is_integer() and math.isfinite(number) else number


def _series_label(series: Any) -> str:
    label = f"{series.exchange} · {series.symbol} · {series.timeframe}"
    first, last = getattr(series, "first", None), getattr(series, "last", None)
    if first is not None and last is not None:
        label += f" ({first:%Y-%m-%d} → {last:%Y-%m-%d})"
    return label


def default_range(last: datetime | None) -> dict[str, date]:
    """The year up to the series' last candle."""
    end = last.date() if last is not None else datetime.now(tz=UTC).date()
    return {"start": end - timedelta(days=364), "end": end}
