"""Bot pages: the list of live cards, the new-bot form, the bot page, and the buttons that
call the lifecycle services (apps/bots/services/lifecycle.py)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.bots.actions import bot_action_run
from apps.bots.forms import BotForm
from apps.bots.models import Bot
from apps.bots.push import bot_card_render
from apps.bots.selectors import (
    bot_card,
    bot_create_choices,
    bot_equity_curve,
    bot_get_for_user,
    bot_list_for_user,
    bot_log_list,
    bot_marks,
    bot_order_list,
    bot_positions,
    bot_run_latest,
    bot_trades,
    user_panic_engaged,
)
from apps.bots.services import lifecycle
from apps.bots.services.create import BotQuotaExceeded, bot_create
from apps.common.errors import ApplicationError, InputInvalid

LOGS_PER_PAGE = 50
ORDERS_SHOWN = 100


@login_required
@require_GET
def bot_list(request: HttpRequest) -> HttpResponse:
    bots = bot_list_for_user(user=request.user)
    cards = [bot_card(bot=bot, run=next(iter(bot.runs.all()), None)) for bot in bots]
    context = {"cards": cards, "panic": user_panic_engaged(user=request.user)}
    return render(request, "bots/list.html", context)


def _initial(request: HttpRequest, choices: dict[str, Any]) -> dict[str, Any]:
    """Defaults, pre-filled from `?version=<id>` (the backtest page's "Run as paper bot")."""
    initial: dict[str, Any] = {"symbols": "BTC/USDT", "timeframe": "1h"}
    version_id = request.GET.get("version", "")
    version = next((v for v in choices["versions"] if str(v.pk) == version_id), None)
    if version is not None:
        initial["strategy_version_id"] = version.pk
        initial["name"] = f"{version.strategy.name} v{version.number} paper"
    for key in ("symbol", "timeframe"):
        if request.GET.get(key):
            initial["symbols" if key == "symbol" else key] = request.GET[key]
    paper = next((a for a in choices["accounts"] if a.mode == "paper"), None)
    if paper is not None:
        initial["account_id"] = paper.pk
    return initial


@login_required
@require_http_methods(["GET", "POST"])
def bot_create_view(request: HttpRequest) -> HttpResponse:
    choices = bot_create_choices(user=request.user)
    lists = {"versions": choices["versions"], "accounts": choices["accounts"]}
    if request.method == "POST":
        form = BotForm(request.POST, **lists)
        if form.is_valid():
            try:
                bot = bot_create(owner=request.user, **form.bot_input())
            except InputInvalid as error:
                form.apply_errors(error)
            except BotQuotaExceeded as error:
                form.add_error(None, error.message)
            else:
                messages.success(request, f"Created “{bot.name}”. Start it when you are ready.")
                return redirect("bots:detail", bot_id=bot.pk)
    else:
        form = BotForm(initial=_initial(request, choices), **lists)
    return render(request, "bots/create.html", {"form": form, **choices})


def _detail_context(request: HttpRequest, bot: Bot) -> dict[str, Any]:
    run = bot_run_latest(bot=bot)
    marks = bot_marks(bot=bot, run=run)
    card = bot_card(bot=bot, run=run)
    logs = Paginator(bot_log_list(bot=bot), LOGS_PER_PAGE).get_page(request.GET.get("page"))
    orders = bot_order_list(bot=bot)
    return {
        "bot": bot,
        "run": run,
        "card": card,
        "card_html": bot_card_render(card=card, request=request),
        "positions": bot_positions(bot=bot, marks=marks),
        "open_orders": bot_order_list(bot=bot, open_only=True),
        "orders": orders[:ORDERS_SHOWN],
        "trades": bot_trades(bot=bot, marks=marks),
        "logs": logs,
        "chart_data": {"equity": bot_equity_curve(run=run)},
    }


@login_required
@require_GET
def bot_detail(request: HttpRequest, bot_id: int) -> HttpResponse:
    bot = bot_get_for_user(user=request.user, bot_id=bot_id)
    context = _detail_context(request, bot)
    partial = request.GET.get("partial", "")
    template = "bots/detail.html"
    if getattr(request, "htmx", False) and partial in ("logs", "live"):
        template += f"#{partial}"
    return render(request, template, context)


@login_required
@require_GET
def bot_card_view(request: HttpRequest, bot_id: int) -> HttpResponse:
    """The card partial: what the websocket pushes, re-read over HTTP after a reconnect."""
    bot = bot_get_for_user(user=request.user, bot_id=bot_id)
    card = bot_card(bot=bot, run=bot_run_latest(bot=bot))
    return HttpResponse(bot_card_render(card=card, request=request))


DONE_MESSAGES = {
    "start": "Started “{name}”.",
    "pause": "Paused “{name}”: no new ticks until you resume.",
    "resume": "Resumed “{name}”.",
    "stop": "Stopping “{name}”{closing}.",
    "kill": "Killed “{name}”: open orders cancelled, positions flat.",
    "risk-resume": "“{name}” may trade again (risk stage ACTIVE).",
}


@login_required
@require_POST
def bot_action(request: HttpRequest, bot_id: int, action: str) -> HttpResponse:
    """A lifecycle button; the stop button's form carries the "close positions" box."""
    bot = bot_get_for_user(user=request.user, bot_id=bot_id)
    close_positions = request.POST.get("close_positions") in ("on", "true", "1")
    try:
        bot_action_run(bot=bot, user=request.user, action=action, close_positions=close_positions)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        closing = " and closing its positions" if close_positions else ", positions left open"
        messages.success(request, DONE_MESSAGES[action].format(name=bot.name, closing=closing))
    return redirect("bots:detail", bot_id=bot.pk)


@login_required
@require_POST
def bot_panic(request: HttpRequest) -> HttpResponse:
    try:
        lifecycle.user_panic(user=request.user, acting_user=request.user)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.warning(request, "Panic: every bot stopped, orders cancelled, positions flat.")
    return redirect("bots:list")


@login_required
@require_POST
def bot_panic_release(request: HttpRequest) -> HttpResponse:
    try:
        lifecycle.user_panic_release(user=request.user, acting_user=request.user)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Panic switch released: your bots may be started again.")
    return redirect("bots:list")
