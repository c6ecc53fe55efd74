"""The market data page: coverage and gaps per series, and a CSV upload."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


@login_required
def coverage(request: HttpRequest) -> HttpResponse:
    return render(request, "market/coverage.html", {})
