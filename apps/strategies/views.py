"""Strategy pages: list, create (choose a kind, then its editor), detail, edit, archive.

Every page that names a strategy or version reads it through a `*_get_for_user` selector
first, so a stranger gets 404 whatever the method or the body.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.common.errors import ApplicationError
from apps.strategies.describe import tree_outline
from apps.strategies.editors import EDITORS, Editor
from apps.strategies.forms import KIND_HELP, StrategyMetaForm
from apps.strategies.models import EDITABLE_KINDS, Strategy, StrategyKind, StrategyVersion
from apps.strategies.selectors import (
    strategy_get_for_user,
    strategy_latest_version,
    strategy_list_for_user,
    strategy_version_get_for_user,
    strategy_versions,
)
from apps.strategies.services import (
    NoChanges,
    strategy_archive,
    strategy_create,
    strategy_version_create,
)
from apps.strategies.specs import RECORDED_READ_ONLY, StrategyInvalid


def _kinds() -> list[dict[str, str]]:
    return [
        {"value": kind.value, "label": kind.label, "help": KIND_HELP[kind]}
        for kind in EDITABLE_KINDS
    ]


@login_required
@require_GET
def strategy_list(request: HttpRequest) -> HttpResponse:
    show_archived = request.GET.get("archived") == "1"
    context = {
        "strategies": strategy_list_for_user(user=request.user, archived=show_archived),
        "show_archived": show_archived,
        "kinds": _kinds(),
    }
    return render(request, "strategies/list.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def strategy_new(request: HttpRequest) -> HttpResponse:
    kind = str(request.POST.get("kind") or request.GET.get("kind", ""))
    if kind not in EDITABLE_KINDS:
        return render(request, "strategies/choose_kind.html", {"kinds": _kinds()})
    return _editor_page(request, kind=kind, strategy=None)


@login_required
@require_http_methods(["GET", "POST"])
def strategy_edit(request: HttpRequest, strategy_id: int) -> HttpResponse:
    strategy = strategy_get_for_user(user=request.user, strategy_id=strategy_id)
    if strategy.is_archived:
        messages.error(request, "This strategy is archived; it cannot be edited.")
        return redirect("strategies:detail", strategy_id=strategy.pk)
    if not strategy.is_editable:
        messages.error(request, RECORDED_READ_ONLY[0].upper() + RECORDED_READ_ONLY[1:] + ".")
        return redirect("strategies:detail", strategy_id=strategy.pk)
    return _editor_page(request, kind=strategy.kind, strategy=strategy)


def _editor_page(request: HttpRequest, *, kind: str, strategy: Strategy | None) -> HttpResponse:
    latest = strategy_latest_version(strategy=strategy) if strategy is not None else None
    data = request.POST if request.method == "POST" else None
    editor = EDITORS[kind](data, request.GET, latest)
    meta = StrategyMetaForm(data, creating=strategy is None)
    status = 200
    if editor.saving:
        response = _save(request, editor=editor, meta=meta, strategy=strategy, kind=kind)
        if response is not None:
            return response
        status = 400
    context: dict[str, Any] = {
        "kind": kind,
        "kind_label": StrategyKind(kind).label,
        "strategy": strategy,
        "latest": latest,
        "meta": meta,
        "editor_errors": editor.errors,
        "invalid": status == 400,
        **editor.context(),
    }
    page = "strategies/editor.html"
    if getattr(request, "htmx", False) and not editor.saving and kind == StrategyKind.CONDITIONS:
        page += "#builder"
    return render(request, page, context, status=status)


def _save(
    request: HttpRequest,
    *,
    editor: Editor,
    meta: StrategyMetaForm,
    strategy: Strategy | None,
    kind: str,
) -> HttpResponse | None:
    """Create the strategy or its next version; None when the page must show errors."""
    spec = editor.spec()
    if not meta.is_valid() or spec is None:
        return None
    note = meta.cleaned_data.get("note", "")
    try:
        if strategy is None:
            strategy, version = strategy_create(
                owner=request.user,
                name=meta.cleaned_data.get("name", ""),
                description=meta.cleaned_data.get("description", ""),
                kind=kind,
                note=note,
                **spec,
            )
        else:
            version = strategy_version_create(
                strategy=strategy, acting_user=request.user, note=note, **spec
            )
    except NoChanges as exc:
        messages.info(request, exc.message)
        return redirect("strategies:detail", strategy_id=strategy.pk)
    except StrategyInvalid as exc:
        _show_problems(editor, meta, exc.problems)
        return None
    except ApplicationError as exc:
        editor.errors.append(exc.message)
        return None
    messages.success(request, f"Saved {strategy.name} version {version.number}.")
    return redirect("strategies:detail", strategy_id=strategy.pk)


def _show_problems(editor: Editor, meta: StrategyMetaForm, problems: list[tuple[str, str]]) -> None:
    rest = []
    for path, message in problems:
        if path in meta.fields:
            meta.add_error(path, message)
        else:
            rest.append((path, message))
    editor.add_problems(rest)


def _version_context(version: StrategyVersion) -> dict[str, Any]:
    outlines = []
    if version.entry is not None and version.exit is not None:
        outlines = [("Entry", tree_outline(version.entry)), ("Exit", tree_outline(version.exit))]
    return {"version": version, "outlines": outlines}


@login_required
@require_GET
def strategy_detail(request: HttpRequest, strategy_id: int) -> HttpResponse:
    strategy = strategy_get_for_user(user=request.user, strategy_id=strategy_id)
    versions = list(strategy_versions(strategy=strategy))
    context = {"strategy": strategy, "versions": versions}
    if versions:
        context.update(_version_context(versions[0]))
    return render(request, "strategies/detail.html", context)


@login_required
@require_POST
def strategy_archive_view(request: HttpRequest, strategy_id: int) -> HttpResponse:
    strategy = strategy_get_for_user(user=request.user, strategy_id=strategy_id)
    strategy_archive(strategy=strategy, acting_user=request.user)
    messages.success(request, f"Archived {strategy.name}. Its versions are kept.")
    return redirect("strategies:list")


@login_required
@require_GET
def strategy_version_detail(request: HttpRequest, version_id: int) -> HttpResponse:
    version = strategy_version_get_for_user(user=request.user, version_id=version_id)
    context = {"strategy": version.strategy, **_version_context(version)}
    return render(request, "strategies/version_detail.html", context)
