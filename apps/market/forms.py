from django import forms

from apps.engine.timeframes import COMMON_TIMEFRAMES

MAX_UPLOAD_BYTES = 100 * 1024 * 1024


class CandleUploadForm(forms.Form):
    """A candle CSV and the series it belongs to; the service checks the content."""

    file = forms.FileField(
        help_text="CSV with header timestamp,open,high,low,close,volume (ISO-8601 UTC open times)"
    )
    exchange = forms.CharField(max_length=32, initial="binance", help_text="ccxt id, e.g. binance")
    symbol = forms.CharField(max_length=64, help_text="ccxt form, e.g. BTC/USDT")
    timeframe = forms.ChoiceField(choices=[(code, code) for code in COMMON_TIMEFRAMES])

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"the file is {upload.size // (1024 * 1024)} MB; the limit is "
                f"{MAX_UPLOAD_BYTES // (1024 * 1024)} MB (use manage.py import_candles instead)"
            )
        return upload
