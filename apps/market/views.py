"""The market data page: coverage and gaps per series, and a CSV upload.

Candles are shared market data, so any signed-in user sees all of it and may add to it.
"""

import tempfile
from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from apps.common.errors import ApplicationError
from apps.market.forms import CandleUploadForm
from apps.market.selectors import candle_coverage_list
from apps.market.services import candles_import_csv


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
    context = {"form": form, "coverage": candle_coverage_list()}
    return render(request, "market/coverage.html", context, status=status)


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
