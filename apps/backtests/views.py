"""Backtest pages: list, create (pairs formset with HTMX add/remove), detail with live
progress, per-pair results with charts, and the trades CSV."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.backtests.forms import (
    BacktestTaskForm,
    default_pair_row,
    default_range,
    pair_formset,
    pair_rows_from_post,
)
from apps.backtests.progress import progress_state, render_progress
from apps.backtests.selectors import (
    TRADE_SORTS,
    backtest_create_choices,
    backtest_pair_candles,
    backtest_pair_chart_data,
    backtest_pair_get_for_user,
    backtest_pair_result,
    backtest_task_chart_data,
    backtest_task_get_for_user,
    backtest_task_list_for_user,
    backtest_task_with_pairs,
    backtest_trade_list,
)
from apps.backtests.services import BacktestInvalid, backtest_task_cancel, backtest_task_create
from apps.common.timefmt import utc_text

PAIR_FIELD = re.compile(r"^pairs\[(\d+)\]\.(\w+)$")
TRADES_PER_PAGE = 50


def _template(request: HttpRequest, page: str, partial: str) -> str:
    return f"{page}#{partial}" if getattr(request, "htmx", False) else page


@login_required
@require_GET
def backtest_list(request: HttpRequest) -> HttpResponse:
    tasks = backtest_task_list_for_user(user=request.user)
    return render(request, "backtests/list.html", {"tasks": tasks})


def _apply_errors(error: BacktestInvalid, form: BacktestTaskForm, formset: Any) -> None:
    for path, message in error.problems:
        match = PAIR_FIELD.match(path)
        if match is not None and int(match.group(1)) < len(formset.forms):
            pair_form = formset.forms[int(match.group(1))]
            name = match.group(2)
            pair_form.add_error(name if name in pair_form.fields else None, message)
        elif path in form.fields:
            form.add_error(path, message)
        else:
            form.add_error(None, message)


def _edited_pairs(request: HttpRequest, action: str) -> list[dict[str, Any]]:
    rows = pair_rows_from_post(request.POST)
    if action == "add_pair":
        copy = dict(rows[-1]) if rows else default_pair_row()
        copy["symbol"] = ""
        rows.append(copy)
    elif action.startswith("remove_"):
        index = int(action.removeprefix("remove_")) if action[7:].isdigit() else -1
        if 0 <= index < len(rows) and len(rows) > 1:
            rows.pop(index)
    return rows


@login_required
@require_http_methods(["GET", "POST"])
def backtest_create(request: HttpRequest) -> HttpResponse:
    choices = backtest_create_choices(user=request.user)
    versions = choices["versions"]
    action = request.POST.get("action", "") if request.method == "POST" else ""
    if action:
        # Add or remove a pair: re-render what was typed, without validating it yet.
        form = BacktestTaskForm(initial=request.POST.dict())
        formset = pair_formset(versions=versions, initial=_edited_pairs(request, action))
        context = {"form": form, "formset": formset, **choices}
        return render(request, _template(request, "backtests/create.html", "pairs"), context)
    if request.method == "POST":
        form = BacktestTaskForm(request.POST)
        formset = pair_formset(versions=versions, data=request.POST)
        if form.is_valid() and formset.is_valid():
            start, end = form.start_end()
            try:
                task = backtest_task_create(
                    owner=request.user,
                    name=form.cleaned_data["name"],
                    exchange=form.cleaned_data["exchange"],
                    market_type=form.cleaned_data["market_type"],
                    start=start,
                    end=end,
                    pairs=[pair_form.pair_input() for pair_form in formset.forms],
                )
            except BacktestInvalid as error:
                _apply_errors(error, form, formset)
            else:
                messages.success(request, f"Queued “{task.name}”.")
                return redirect("backtests:detail", task_id=task.pk)
    else:
        first = versions.first()
        symbol = choices["symbols"][0] if choices["symbols"] else ""
        form = BacktestTaskForm(initial=default_range(choices["latest"]))
        formset = pair_formset(
            versions=versions,
            initial=[default_pair_row(symbol=symbol, version_id=first.pk if first else None)],
        )
    context = {"form": form, "formset": formset, **choices}
    return render(request, "backtests/create.html", context)


@login_required
@require_GET
def backtest_detail(request: HttpRequest, task_id: int) -> HttpResponse:
    task = backtest_task_get_for_user(user=request.user, task_id=task_id)
    pairs = backtest_task_with_pairs(task=task)
    context: dict[str, Any] = {
        "task": task,
        "pairs": pairs,
        "progress_html": render_progress(
            progress_state(task), request=request, results_shown=task.status == "done"
        ),
    }
    if task.status == task.Status.DONE:
        context["chart_data"] = backtest_task_chart_data(task=task)
    partial = "results" if request.GET.get("partial") == "results" else "page"
    template = "backtests/detail.html"
    if partial == "results" and getattr(request, "htmx", False):
        template += "#results"
    return render(request, template, context)


@login_required
@require_GET
def backtest_progress(request: HttpRequest, task_id: int) -> HttpResponse:
    """The progress partial: the HTTP fallback of the websocket, polled every 2 s."""
    task = backtest_task_get_for_user(user=request.user, task_id=task_id)
    return HttpResponse(render_progress(progress_state(task), request=request))


@login_required
@require_POST
def backtest_cancel(request: HttpRequest, task_id: int) -> HttpResponse:
    task = backtest_task_get_for_user(user=request.user, task_id=task_id)
    cancelled = backtest_task_cancel(task=task, acting_user=request.user)
    if getattr(request, "htmx", False):
        task.refresh_from_db(fields=["status", "progress", "error"])
        return HttpResponse(render_progress(progress_state(task), request=request))
    if cancelled:
        messages.success(request, f"Cancelled “{task.name}”.")
    else:
        messages.info(request, f"“{task.name}” had already finished.")
    return redirect("backtests:detail", task_id=task.pk)


SORT_LABELS = [
    ("number", "#"),
    ("side", "Side"),
    ("entry_time", "Entry (UTC)"),
    ("entry_price", "Entry price"),
    ("exit_time", "Exit (UTC)"),
    ("exit_price", "Exit price"),
    ("size", "Size"),
    ("fee", "Fees"),
    ("pnl", "P&L"),
    ("exit_reason", "Exit reason"),
]


@login_required
@require_GET
def pair_detail(request: HttpRequest, pair_id: int) -> HttpResponse:
    pair = backtest_pair_get_for_user(user=request.user, pair_id=pair_id)
    task = pair.task
    result = backtest_pair_result(pair=pair)
    sort = request.GET.get("sort", "number")
    sort = sort if sort in TRADE_SORTS else "number"
    descending = request.GET.get("dir") == "desc"
    context: dict[str, Any] = {
        "pair": pair,
        "task": task,
        "result": result,
        "sort": sort,
        "descending": descending,
        "columns": SORT_LABELS,
    }
    if result is not None:
        candles = backtest_pair_candles(pair=pair)
        context["chart_data"] = backtest_pair_chart_data(pair=pair, result=result, candles=candles)
        trades = backtest_trade_list(pair=pair, sort=sort, descending=descending)
        context["page"] = Paginator(trades, TRADES_PER_PAGE).get_page(request.GET.get("page"))
    template = _template(request, "backtests/pair_detail.html", "trades")
    return render(request, template, context)


class _Echo:
    def write(self, value: str) -> str:
        return value


CSV_HEADER = [
    "number",
    "side",
    "entry_time",
    "exit_time",
    "entry_price",
    "exit_price",
    "size",
    "fee",
    "pnl",
    "exit_reason",
]


def _iso(moment: Any) -> str:
    return "" if moment is None else utc_text(moment)


def _csv_rows(pair: Any) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    for trade in backtest_trade_list(pair=pair).iterator(chunk_size=2000):
        yield writer.writerow(
            [
                trade.number,
                trade.side,
                _iso(trade.entry_time),
                _iso(trade.exit_time),
                repr(trade.entry_price),
                "" if trade.exit_price is None else repr(trade.exit_price),
                repr(trade.size),
                repr(trade.fee),
                repr(trade.pnl),
                trade.exit_reason,
            ]
        )


@login_required
@require_GET
def pair_trades_csv(request: HttpRequest, pair_id: int) -> StreamingHttpResponse:
    pair = backtest_pair_get_for_user(user=request.user, pair_id=pair_id)
    filename = f"backtest-{pair.task_id}-{pair.symbol.replace('/', '-')}-{pair.timeframe}.csv"
    response = StreamingHttpResponse(_csv_rows(pair), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
