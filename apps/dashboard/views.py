"""Portal pages: the public landing page, the dashboard and the user's activity log."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET
from django_htmx.middleware import HtmxDetails

from apps.dashboard.forms import ActivityFilterForm
from apps.dashboard.selectors import (
    activity_event_types_for_user,
    activity_events_for_user,
    dashboard_summary_for_user,
)

ACTIVITY_PAGE_SIZE = 25


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


@require_GET
def landing(request: HtmxHttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("dashboard:home")
    return render(request, "dashboard/landing.html")


@login_required
@require_GET
def home(request: HtmxHttpRequest) -> HttpResponse:
    summary = dashboard_summary_for_user(user=request.user)
    return render(request, "dashboard/home.html", {"summary": summary})


@login_required
@require_GET
def activity(request: HtmxHttpRequest) -> HttpResponse:
    event_types = activity_event_types_for_user(user=request.user)
    form = ActivityFilterForm(request.GET, event_types=event_types)
    if not form.is_valid():
        # The whole page, so the form error is visible even to an htmx caller.
        context = {"form": form, "page": None, "has_any_events": bool(event_types)}
        return render(request, "dashboard/activity.html", context, status=400)
    events = activity_events_for_user(user=request.user, event_type=form.cleaned_data["event_type"])
    page = Paginator(events, ACTIVITY_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "page_range": page.paginator.get_elided_page_range(page.number),
        "has_any_events": bool(event_types),
    }
    template = "dashboard/activity.html"
    # A history restore after a cache miss swaps the whole body, so it needs the full page.
    if request.htmx and not request.htmx.history_restore_request:
        template += "#events-table"
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response
