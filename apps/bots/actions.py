"""The lifecycle buttons, shared by the pages and the API: each action name calls one of
botcore's audited services (apps/bots/services/lifecycle.py) with the bot's latest run."""

from __future__ import annotations

from typing import Any

from apps.accounts.models import User
from apps.bots.models import AccountRisk, Bot, BotRun
from apps.bots.selectors import bot_run_latest
from apps.bots.services import lifecycle
from apps.common.errors import ApplicationError
from apps.engine.risk import Stage

ACTIONS = ("start", "pause", "resume", "stop", "kill", "risk-resume")
NOT_RUNNING = "The bot is not running."


def _active_run(bot: Bot) -> BotRun:
    run = bot_run_latest(bot=bot)
    if run is None or not run.is_active:
        raise ApplicationError(NOT_RUNNING)
    return run


def _risk_resume(bot: Bot, run: BotRun, user: User) -> BotRun:
    """Back to ACTIVE: the run's own stage, and its account's when that one stopped it."""
    if Stage(run.risk_state.get("stage", Stage.ACTIVE)) != Stage.ACTIVE:
        run = lifecycle.run_risk_resume(run=run, acting_user=user)
    account = AccountRisk.objects.filter(account_id=bot.account_id).first()
    if account is not None and Stage(account.state.get("stage", Stage.ACTIVE)) != Stage.ACTIVE:
        lifecycle.account_risk_resume(account=bot.account, acting_user=user)
    return run


def bot_action_run(
    *, bot: Bot, user: User, action: str, close_positions: bool | None = None
) -> Any:
    """Run `action` on `bot`; ApplicationError when the bot's state does not allow it.
    `close_positions` (stop only) defaults to the bot's close_on_stop."""
    if action == "start":
        return lifecycle.bot_run_start(bot=bot, acting_user=user)
    if action == "kill":
        return lifecycle.bot_kill(bot=bot, acting_user=user)
    run = _active_run(bot)
    if action == "pause":
        return lifecycle.bot_run_pause(run=run, acting_user=user)
    if action == "resume":
        return lifecycle.bot_run_resume(run=run, acting_user=user)
    if action == "risk-resume":
        return _risk_resume(bot, run, user)
    if action == "stop":
        close = bot.close_on_stop if close_positions is None else close_positions
        return lifecycle.bot_run_stop(run=run, acting_user=user, close_positions=close)
    raise ValueError(f"unknown bot action {action!r}")
