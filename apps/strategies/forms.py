from django import forms

from apps.strategies.models import StrategyKind


class StrategyMetaForm(forms.Form):
    """What every editor shares: the name and description (on create) and a version note."""

    name = forms.CharField(max_length=100, required=False)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    note = forms.CharField(
        max_length=200,
        required=False,
        help_text="What changed in this version (optional).",
    )

    def __init__(self, *args, creating: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not creating:
            del self.fields["name"]
            del self.fields["description"]


class StrategyArchiveForm(forms.Form):
    confirm = forms.BooleanField(required=False)


KIND_HELP = {
    StrategyKind.TEMPLATE: (
        "Start from a ready strategy (SMA cross, RSI swing, MACD, Bollinger, breakout, "
        "scalping, weighted composer, grid, DCA) and tune its parameters."
    ),
    StrategyKind.CONDITIONS: (
        "Build entry and exit rules from indicators, prices and numbers, combined with "
        "ALL / ANY groups or weighted votes (each signal has a weight; enter when the weights "
        "of the true signals add up to at least the threshold), nested as deep as you need."
    ),
    StrategyKind.SCRIPT: (
        "Write Python: main(sdk, params) runs on every closed candle, in a sandbox with "
        "time and memory limits."
    ),
}
