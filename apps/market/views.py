"""The market data page: coverage and gaps per series, a CSV upload, exchange downloads.

Candles are shared market data, so any signed-in user sees all of it and may add to it.
A download (the job fetching candles from an exchange) belongs to who started it: only
its owner sees its progress; anyone else gets a 404.
"""

import tempfile
from pathlib import Path
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.common.errors import ApplicationError
from apps.engine.timeframes import COMMON_TIMEFRAMES
from apps.market.download import (
    DOWNLOAD_EXCHANGE_IDS,
    candle_download_get,
    candle_download_list,
    candle_download_resume,
    candle_download_start,
)
from apps.market.forms import CandleUploadForm
from apps.market.models import CandleDownload
from apps.market.selectors import candle_coverage_list
from apps.market.services import candles_import_csv

DATETIME_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class CandleDownloadForm(forms.Form):
    """What to download; the service checks exchange, symbol, timeframe and range."""

    exchange = forms.CharField(
        max_length=32,
        initial="binance",
        help_text=f"ccxt id; supported: {', '.join(DOWNLOAD_EXCHANGE_IDS)}",
    )
    symbol = forms.CharField(max_length=64, help_text="ccxt form, e.g. BTC/USDT")
    timeframe = forms.ChoiceField(
        choices=[(code, code) for code in COMMON_TIMEFRAMES], initial="1h"
    )
    start = forms.DateTimeField(widget=DATETIME_INPUT, help_text="UTC, first candle open time")
    end = forms.DateTimeField(widget=DATETIME_INPUT, help_text="UTC, candles opening before")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The upload form on the same page has fields of the same names.
        kwargs.setdefault("auto_id", "download_%s")
        super().__init__(*args, **kwargs)


@login_required
@require_http_methods(["GET", "POST"])
def coverage(request: HttpRequest) -> HttpResponse:
    form = CandleUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        if form.is_valid() and _import_upload(request, form):
            return redirect("market:coverage")
        status = 400
    else:
        status = 200
    return _page(request, form=form, download_form=CandleDownloadForm(), status=status)


def _page(
    request: HttpRequest,
    *,
    form: CandleUploadForm,
    download_form: CandleDownloadForm,
    status: int,
) -> HttpResponse:
    context = {
        "form": form,
        "download_form": download_form,
        "downloads": candle_download_list(owner=request.user),
        "coverage": candle_coverage_list(),
    }
    return render(request, "market/coverage.html", context, status=status)


@login_required
@require_POST
def download_start(request: HttpRequest) -> HttpResponse:
    form = CandleDownloadForm(request.POST)
    if form.is_valid():
        try:
            download = candle_download_start(owner=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            field = exc.field if exc.field in form.fields else None
            form.add_error(field, f"{exc.message}. Nothing was started.")
        else:
            messages.success(request, f"Download started: {download}.")
            return redirect("market:coverage")
    return _page(request, form=CandleUploadForm(), download_form=form, status=400)


def _owned(request: HttpRequest, download_id: int) -> CandleDownload:
    try:
        return candle_download_get(owner=request.user, download_id=download_id)
    except CandleDownload.DoesNotExist:
        raise Http404("No such download.") from None


@login_required
@require_http_methods(["GET"])
def download_progress(request: HttpRequest, download_id: int) -> HttpResponse:
    download = _owned(request, download_id)
    return render(request, "market/_download_progress.html", {"download": download})


@login_required
@require_POST
def download_resume(request: HttpRequest, download_id: int) -> HttpResponse:
    download = _owned(request, download_id)
    try:
        candle_download_resume(download=download, acting_user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Download resumed: {download}.")
    return redirect("market:coverage")


def _import_upload(request: HttpRequest, form: CandleUploadForm) -> bool:
    upload = form.cleaned_data["file"]
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "upload.csv"
        with path.open("wb") as handle:
            for chunk in upload.chunks():
                handle.write(chunk)
        try:
            result = candles_import_csv(
                path=path,
                exchange=form.cleaned_data["exchange"],
                symbol=form.cleaned_data["symbol"],
                timeframe=form.cleaned_data["timeframe"],
                acting_user=request.user,
                name=Path(upload.name).name,
            )
        except ApplicationError as exc:
            field = exc.field if exc.field in form.fields else None
            form.add_error(field, f"{exc.message}. Nothing was imported.")
            return False
    messages.success(request, result.summary())
    return True
