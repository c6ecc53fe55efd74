"""Optimisation pages: list, create (parameter ranges re-rendered over HTMX when the version
changes), detail with live progress, the ranked results, a heatmap of two parameters and
the walk-forward windows; cancel, and "Backtest these parameters"."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.common.errors import ApplicationError
from apps.engine.optimize import OptimizationError
from apps.engine.templates import TEMPLATES
from apps.optimizations.forms import OptimizationForm, default_range
from apps.optimizations.models import OptimizationTask
from apps.optimizations.progress import progress_state, render_progress
from apps.optimizations.selectors import (
    ROW_SORTS,
    heatmap_axes,
    optimization_create_choices,
    optimization_get_for_user,
    optimization_heatmap,
    optimization_list_for_user,
    optimization_param_specs,
    optimization_rows,
    optimization_window,
)
from apps.optimizations.services import (
    OptimizationInvalid,
    optimization_params_adopt,
    optimization_task_cancel,
    optimization_task_create,
)

TASKS_PER_PAGE = 20
ROWS_PER_PAGE = 25


def _is_htmx(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", False))


@login_required
@require_GET
def optimization_list(request: HttpRequest) -> HttpResponse:
    tasks = optimization_list_for_user(user=request.user)
    page = Paginator(tasks, TASKS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "optimizations/list.html", {"page": page})


def _chosen(queryset: Any, wanted: str | None) -> Any:
    """The object of `queryset` with pk `wanted`, else the first one (or None)."""
    if wanted and wanted.isdigit():
        found = queryset.filter(pk=int(wanted)).first()
        if found is not None:
            return found
    return queryset.first()


def _form(request: HttpRequest, choices: dict[str, Any], data: Any = None) -> OptimizationForm:
    source = request.POST if request.method == "POST" else request.GET
    version = _chosen(choices["versions"], source.get("strategy_version") or source.get("version"))
    series = _chosen(choices["series"], source.get("series"))
    specs = list(TEMPLATES[version.template].params) if version is not None else []
    initial: dict[str, Any] = {**default_range(getattr(series, "last", None))}
    if version is not None:
        initial["strategy_version"] = version.pk
    if series is not None:
        initial["series"] = series.pk
    return OptimizationForm(
        data,
        initial=initial,
        versions=choices["versions"],
        series=choices["series"],
        param_specs=specs,
        param_values=version.params if version is not None else None,
    )


@login_required
@require_http_methods(["GET", "POST"])
def optimization_create(request: HttpRequest) -> HttpResponse:
    choices = optimization_create_choices(user=request.user)
    if request.method == "GET" and _is_htmx(request) and "strategy_version" in request.GET:
        # The version select changed: only its parameter ranges are re-rendered.
        context = {"form": _form(request, choices)}
        return render(request, "optimizations/create.html#params", context)
    form = _form(request, choices, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            task = optimization_task_create(owner=request.user, data=form.optimization_input())
        except OptimizationInvalid as error:
            for path, message in error.problems:
                form.add_service_error(path, message)
        else:
            messages.success(request, f"Queued optimisation #{task.pk}.")
            return redirect("optimizations:detail", optimization_id=task.pk)
    context = {"form": form, **choices}
    return render(request, "optimizations/create.html", context)


def _window(task: OptimizationTask, request: HttpRequest) -> int | None:
    return optimization_window(task=task, wanted=request.GET.get("window"))


def _query(request: HttpRequest, **changes: Any) -> str:
    """The current query string with `changes` applied (None removes a key)."""
    query = request.GET.copy()
    for key, value in changes.items():
        query.pop(key, None)
        if value is not None:
            query[key] = value
    return query.urlencode()


def _links(request: HttpRequest, **changes: Any) -> dict[str, str]:
    """A full-page href and its HTMX twin that swaps only the results table."""
    return {
        "href": "?" + _query(request, partial=None, **changes),
        "hx": "?" + _query(request, partial="rows", **changes),
    }


ROW_COLUMNS = [
    ("total_return", "Return"),
    ("sharpe", "Sharpe"),
    ("max_drawdown", "Max DD"),
    ("win_rate", "Win rate"),
    ("trade_count", "Trades"),
]


def _results_context(request: HttpRequest, task: OptimizationTask) -> dict[str, Any]:
    sort = request.GET.get("sort", "score")
    sort = sort if sort in ROW_SORTS else "score"
    descending = request.GET.get("dir") != "asc"
    rows = optimization_rows(
        task=task, window=_window(task, request), sort=sort, descending=descending
    )
    page = Paginator(rows, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    for row in page.object_list:
        row.varied_values = [row.params.get(name) for name in task.varied]
    columns = []
    for key, label in [("score", task.metric_label), *ROW_COLUMNS]:
        flip = "asc" if key == sort and descending else None
        columns.append(
            {"key": key, "label": label, **_links(request, sort=key, dir=flip, page=None)}
        )
    return {
        "page": page,
        "sort": sort,
        "descending": descending,
        "window": _window(task, request),
        "columns": columns,
        "previous": _links(request, page=page.number - 1) if page.has_previous() else None,
        "next": _links(request, page=page.number + 1) if page.has_next() else None,
    }


def _heatmap_context(request: HttpRequest, task: OptimizationTask) -> dict[str, Any]:
    varied = task.varied
    if len(varied) < 2:
        return {"heat": None}
    # The page is lenient: an axis it does not know falls back to the default.
    wanted_x, wanted_y = (request.GET.get(axis) for axis in ("x", "y"))
    x, y = heatmap_axes(
        task=task,
        x=wanted_x if wanted_x in varied else None,
        y=wanted_y if wanted_y in varied and wanted_y != wanted_x else None,
    )
    try:
        heat = optimization_heatmap(task=task, x=x, y=y, window=_window(task, request))
    except OptimizationError:
        return {"heat": None}
    return {"heat": heat, "heat_x": x, "heat_y": y}


@login_required
@require_GET
def optimization_detail(request: HttpRequest, optimization_id: int) -> HttpResponse:
    task = optimization_get_for_user(user=request.user, optimization_id=optimization_id)
    done = task.status == OptimizationTask.Status.DONE
    state = progress_state(task)
    context: dict[str, Any] = {
        "task": task,
        "specs": optimization_param_specs(task=task),
        "progress_html": render_progress(state, request=request, results_shown=done),
    }
    if done:
        context |= _results_context(request, task) | _heatmap_context(request, task)
    partial = request.GET.get("partial", "")
    template = "optimizations/detail.html"
    if _is_htmx(request) and partial in ("results", "rows", "heatmap"):
        template += f"#{partial}"
    return render(request, template, context)


@login_required
@require_GET
def optimization_progress(request: HttpRequest, optimization_id: int) -> HttpResponse:
    """The progress partial: the HTTP fallback of the websocket, polled every second."""
    task = optimization_get_for_user(user=request.user, optimization_id=optimization_id)
    return HttpResponse(render_progress(progress_state(task), request=request))


@login_required
@require_POST
def optimization_cancel(request: HttpRequest, optimization_id: int) -> HttpResponse:
    task = optimization_get_for_user(user=request.user, optimization_id=optimization_id)
    cancelled = optimization_task_cancel(task=task, acting_user=request.user)
    if _is_htmx(request):
        task.refresh_from_db()
        return HttpResponse(render_progress(progress_state(task), request=request))
    if cancelled:
        messages.success(request, f"Cancelled optimisation #{task.pk}.")
    else:
        messages.info(request, f"Optimisation #{task.pk} had already finished.")
    return redirect("optimizations:detail", optimization_id=task.pk)


@login_required
@require_POST
def optimization_adopt(request: HttpRequest, optimization_id: int) -> HttpResponse:
    """Backtest these parameters: a new version of the strategy with them."""
    task = optimization_get_for_user(user=request.user, optimization_id=optimization_id)
    row = request.POST.get("row", "")
    try:
        if not row.isdigit():
            raise ApplicationError("choose a row of the results", field="row")
        version = optimization_params_adopt(
            task=task, row_number=int(row), acting_user=request.user
        )
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect("optimizations:detail", optimization_id=task.pk)
    messages.success(
        request, f"{version} has these parameters; backtest it from the Backtests page."
    )
    return redirect("strategies:version_detail", version_id=version.pk)
