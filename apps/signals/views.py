"""Signal bot pages (list, create, detail with the event history, rotate) and the
TradingView receiver, the only csrf_exempt view: it is authenticated by the secret token
in its URL and the passphrase in its body, never by a session."""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.client_ip import client_ip_address
from apps.bots.models import Bot
from apps.bots.services.create import BotQuotaExceeded
from apps.common.errors import ApplicationError, InputInvalid
from apps.signals.backtest import TIMEFRAMES as BACKTEST_TIMEFRAMES
from apps.signals.backtest import signal_backtest_start
from apps.signals.forms import SignalBotForm
from apps.signals.receive import Delivery, webhook_receive
from apps.signals.selectors import (
    signal_backtest_latest,
    signal_bot_get_for_user,
    signal_bot_list_for_user,
    webhook_events_for_bot,
)
from apps.signals.services import Secrets, signal_bot_create, signal_source_rotate
from apps.signals.templates import curl_example, message_templates

_HOOK_SLOTS = threading.BoundedSemaphore(settings.SIGNALS_HOOK_CONCURRENCY)
EVENTS_PER_PAGE = 25
TOKEN_HIDDEN = "<token shown once>"  # noqa: S105 (stands in for the secret)


@csrf_exempt
@require_POST
def tradingview_hook(request: HttpRequest, hook_token: str) -> HttpResponse:
    received_at = timezone.now()
    limit = settings.SIGNALS_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return JsonResponse({"error": "the body is larger than 1 MB", "field": "body"}, status=413)
    try:
        body = request.body
    except RequestDataTooBig:
        return JsonResponse({"error": "the body is larger than 1 MB", "field": "body"}, status=413)
    if len(body) > limit:
        return JsonResponse({"error": "the body is larger than 1 MB", "field": "body"}, status=413)
    delivery = Delivery(
        token=hook_token,
        body=body,
        content_type=request.content_type or "",
        source_ip=client_ip_address(request),
        received_at=received_at,
    )
    # Under ASGI every request's sync code runs on its own thread with its own database
    # connection; a burst must not take every PostgreSQL slot, so deliveries take turns.
    with _HOOK_SLOTS:
        reply = webhook_receive(delivery=delivery)
    return JsonResponse(reply.data, status=reply.status)


def hook_url(request: HttpRequest, token: str) -> str:
    return request.build_absolute_uri(reverse("hooks:tradingview", kwargs={"hook_token": token}))


@login_required
@require_GET
def signal_bot_list(request: HttpRequest) -> HttpResponse:
    bots = signal_bot_list_for_user(user=request.user)  # type: ignore[arg-type]
    return render(request, "signals/list.html", {"bots": bots})


@login_required
@require_http_methods(["GET", "POST"])
def signal_bot_create_view(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    form = SignalBotForm(request.POST or None, user=user)
    if request.method == "POST" and form.is_valid():
        try:
            bot, secrets = signal_bot_create(owner=user, data=form.signal_bot_input())
        except InputInvalid as error:
            for path, message in error.problems:
                name = path.split("[")[0].split(".")[0]
                form.add_error(name if name in form.fields else None, message)
        except BotQuotaExceeded as error:
            form.add_error(None, error.message)
        else:
            # The secrets exist only in this response: rendered once, never stored.
            return _detail(request, bot, secrets=secrets, status=201)
    return render(request, "signals/create.html", {"form": form})


@login_required
@require_GET
def signal_bot_detail(request: HttpRequest, signal_bot_id: int) -> HttpResponse:
    bot = signal_bot_get_for_user(user=request.user, bot_id=signal_bot_id)  # type: ignore[arg-type]
    return _detail(request, bot)


@login_required
@require_POST
def signal_bot_rotate(request: HttpRequest, signal_bot_id: int) -> HttpResponse:
    user: Any = request.user
    bot = signal_bot_get_for_user(user=user, bot_id=signal_bot_id)
    secrets = signal_source_rotate(
        source=bot.signal_source, actor=user, passphrase=request.POST.get("passphrase") == "1"
    )
    return _detail(request, bot, secrets=secrets)


@login_required
@require_http_methods(["GET", "POST"])
def signal_bot_backtest(request: HttpRequest, signal_bot_id: int) -> HttpResponse:
    """The latest signal backtest of the bot (signals/backtest.py); a POST queues a new
    one for a worker, and the page polls its progress until it is done."""
    user: Any = request.user
    bot = signal_bot_get_for_user(user=user, bot_id=signal_bot_id)
    exchange = bot.account.exchange
    timeframe = "1h"
    error = ApplicationError("")
    if request.method == "POST":
        exchange = request.POST.get("exchange", "").strip() or exchange
        timeframe = request.POST.get("timeframe", "").strip()
        try:
            signal_backtest_start(bot=bot, acting_user=user, exchange=exchange, timeframe=timeframe)
        except ApplicationError as refused:
            error = refused
        else:
            return redirect("signals:backtest", signal_bot_id=bot.pk)
    run = signal_backtest_latest(bot=bot)
    if run is not None and not error.message:
        exchange, timeframe = run.exchange, run.timeframe
    context = {
        "bot": bot,
        "exchange": exchange,
        "timeframe": timeframe,
        "timeframes": BACKTEST_TIMEFRAMES,
        "error": error.message,
        "error_field": error.field or "",
        "run": run,
    }
    template = "signals/backtest.html"
    if getattr(request, "htmx", False) and request.GET.get("partial") == "run":
        template += "#run"
    return render(request, template, context, status=400 if error.message else 200)


def _detail(
    request: HttpRequest, bot: Bot, *, secrets: Secrets | None = None, status: int = 200
) -> HttpResponse:
    page = Paginator(webhook_events_for_bot(bot=bot), EVENTS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    url = hook_url(request, secrets.token) if secrets else hook_url(request, "TOKEN")
    if not secrets:
        url = url.replace("TOKEN", TOKEN_HIDDEN)
    passphrase = secrets.passphrase if secrets else ""
    context = {
        "bot": bot,
        "source": bot.signal_source,
        "events": page,
        "secrets": secrets,
        "hook_url": url,
        "templates": message_templates(passphrase),
        "curl": curl_example(url, passphrase, bot.symbols[0] if bot.symbols else "BTC/USDT"),
    }
    template = "signals/detail.html"
    if getattr(request, "htmx", False) and request.GET.get("page"):
        template += "#events"
    return render(request, template, context, status=status)
