"""Signal bot pages (list, create, detail with the event history, rotate) and the
TradingView receiver, the only csrf_exempt view: it is authenticated by the secret token
in its URL and the passphrase in its body, never by a session."""

from __future__ import annotations

import re
import threading
from typing import Any

from django.conf import settings
from django.contrib import messages
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
from apps.backtests.services import BacktestInvalid
from apps.bots.models import Bot
from apps.bots.selectors import bot_run_latest
from apps.bots.services.create import BotQuotaExceeded
from apps.common.errors import ApplicationError, InputInvalid
from apps.signals.asgi import RECEIVED_AT
from apps.signals.backtest import DEFAULT_TIMEFRAME, NO_ALERTS, signal_backtest_start
from apps.signals.backtest_form import SignalBacktestForm, SignalReplayForm
from apps.signals.forms import SignalBotForm
from apps.signals.receive import Delivery, webhook_receive
from apps.signals.replay import signal_replay_start
from apps.signals.selectors import (
    accepted_alerts_by_symbol,
    signal_backtests_of_bot,
    signal_bot_get_for_user,
    signal_bot_list_for_user,
    signal_replays_of_bot,
    webhook_events_for_bot,
)
from apps.signals.services import Secrets, signal_bot_create, signal_source_rotate
from apps.signals.templates import curl_example, message_templates

_HOOK_SLOTS = threading.BoundedSemaphore(settings.SIGNALS_HOOK_CONCURRENCY)
EVENTS_PER_PAGE = 25
BACKTESTS_LISTED = 20
PAIR_PATH = re.compile(r"^pairs\[\d+\]\.")
TOKEN_HIDDEN = "<token shown once>"  # noqa: S105 (stands in for the secret)


@csrf_exempt
@require_POST
def tradingview_hook(request: HttpRequest, hook_token: str) -> HttpResponse:
    # Arrival as the ASGI entry saw it (before any wait for a thread), else now.
    received_at = getattr(request, "scope", {}).get(RECEIVED_AT) or timezone.now()
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
    """The bot's accepted alerts, their backtests and paper replays; a POST snapshots the
    alerts and queues their backtest in the backtests app (signals/backtest.py), then shows
    its page."""
    user: Any = request.user
    bot = signal_bot_get_for_user(user=user, bot_id=signal_bot_id)
    backtests = signal_backtests_of_bot(bot=bot)
    form = SignalBacktestForm(request.POST or None, initial=_backtest_initial(bot, backtests))
    if request.method == "POST" and form.is_valid():
        try:
            task = signal_backtest_start(bot=bot, acting_user=user, data=form.backtest_input())
        except BacktestInvalid as refused:
            _backtest_errors(form, refused.problems)
        except ApplicationError as refused:
            form.add_error(None, refused.message)
        else:
            messages.success(request, f"Queued “{task.name}”.")
            return redirect("backtests:detail", task_id=task.pk)
    replay_form = SignalReplayForm(user=user, initial=_replay_initial(bot, backtests))
    return _alerts_page(request, bot, form, replay_form)


@login_required
@require_POST
def signal_bot_replay(request: HttpRequest, signal_bot_id: int) -> HttpResponse:
    """Start a paper bot replaying the bot's recorded alerts (signals/replay.py) and show
    its page; refusals come back on the alerts page next to their inputs."""
    user: Any = request.user
    bot = signal_bot_get_for_user(user=user, bot_id=signal_bot_id)
    form = SignalReplayForm(request.POST, user=user)
    if form.is_valid():
        try:
            replay = signal_replay_start(bot=bot, acting_user=user, data=form.replay_input())
        except ApplicationError as refused:
            _replay_errors(form, refused)
        else:
            messages.success(request, f"Started “{replay.name}” on {replay.account.label}.")
            return redirect("bots:detail", bot_id=replay.pk)
    backtests = signal_backtests_of_bot(bot=bot)
    backtest_form = SignalBacktestForm(initial=_backtest_initial(bot, backtests))
    return _alerts_page(request, bot, backtest_form, form)


def _alerts_page(
    request: HttpRequest, bot: Bot, form: SignalBacktestForm, replay_form: SignalReplayForm
) -> HttpResponse:
    context = {
        "bot": bot,
        "form": form,
        "replay_form": replay_form,
        "alerts": list(accepted_alerts_by_symbol(bot=bot)),
        "backtests": signal_backtests_of_bot(bot=bot)[:BACKTESTS_LISTED],
        "replays": [
            (replay, bot_run_latest(bot=replay))
            for replay in signal_replays_of_bot(bot=bot)[:BACKTESTS_LISTED]
        ],
        "no_alerts": NO_ALERTS,
    }
    status = 400 if request.method == "POST" else 200
    return render(request, "signals/backtest.html", context, status=status)


def _replay_initial(bot: Bot, backtests: Any) -> dict[str, Any]:
    initial = _backtest_initial(bot, backtests)
    return {"exchange": initial["exchange"], "timeframe": initial["timeframe"]}


def _replay_errors(form: SignalReplayForm, refused: ApplicationError) -> None:
    """The bot settings the replay refused, next to this form's inputs where it has them;
    the rest (the symbols' candles, the bot quota) above it."""
    problems = getattr(refused, "problems", None) or [(refused.field, refused.message)]
    names = {"account_id": "account", "replay_seconds_per_candle": "seconds_per_candle"}
    for path, message in problems:
        name = names.get(str(path), str(path))
        form.add_error(name if name in form.fields else None, message)


def _backtest_initial(bot: Bot, backtests: Any) -> dict[str, Any]:
    """The settings of the latest backtest of these alerts; else the bot's exchange and
    hourly candles (a signal bot has no timeframe of its own: it acts on each alert)."""
    latest = backtests.first()
    pair = latest.pairs.order_by("position").first() if latest is not None else None
    if pair is None:
        return {"exchange": bot.account.exchange, "timeframe": DEFAULT_TIMEFRAME}
    return {
        "exchange": latest.exchange,
        "timeframe": pair.timeframe,
        "initial_capital": pair.initial_capital,
        "taker_fee": (pair.taker_fee * 100).normalize(),
    }


def _backtest_errors(form: SignalBacktestForm, problems: list[tuple[str, str]]) -> None:
    """The backtests app's refusals next to this form's inputs (a pair's timeframe, capital
    and fee are the form's); the rest, such as missing candles, above it."""
    for path, message in problems:
        name = PAIR_PATH.sub("", path)
        form.add_error(name if name in form.fields else None, message)


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
