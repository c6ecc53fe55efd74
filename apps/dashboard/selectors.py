"""Reads for portal pages that span apps. Every query is filtered by the requesting user."""

from dataclasses import dataclass

from django.apps import apps
from django.db.models import Count, QuerySet

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.audit.selectors import audit_events_for_user
from apps.exchanges.models import ExchangeAccount

RECENT_ACTIVITY_LIMIT = 10


@dataclass(frozen=True)
class ModeCount:
    mode: str
    label: str
    count: int


@dataclass(frozen=True)
class ChecklistStep:
    title: str
    help_text: str
    done: bool


@dataclass(frozen=True)
class DashboardSummary:
    exchange_account_count: int
    exchange_accounts_by_mode: list[ModeCount]
    recent_events: list[AuditEvent]
    checklist: list[ChecklistStep]

    @property
    def is_first_run(self) -> bool:
        return self.exchange_account_count == 0


def _owned_count(*, app_label: str, model_name: str, user: User) -> int:
    # Strategies, backtests and bots arrive in later apps; until a model exists the step is
    # simply not done, so the dashboard works at every stage of the build-out.
    try:
        model = apps.get_model(app_label, model_name)
    except LookupError:
        return 0
    return model.objects.filter(owner=user).count()


def exchange_account_counts_by_mode(*, user: User) -> list[ModeCount]:
    counts = dict(
        ExchangeAccount.objects.filter(owner=user)
        .order_by()
        .values("mode")
        .annotate(count=Count("pk"))
        .values_list("mode", "count")
    )
    return [
        ModeCount(mode, str(label), counts.get(mode, 0))
        for mode, label in ExchangeAccount.Mode.choices
    ]


def dashboard_checklist_for_user(*, user: User, exchange_account_count: int) -> list[ChecklistStep]:
    strategies = _owned_count(app_label="strategies", model_name="Strategy", user=user)
    backtests = _owned_count(app_label="backtests", model_name="BacktestTask", user=user)
    bots = _owned_count(app_label="bots", model_name="Bot", user=user)
    return [
        ChecklistStep(
            "Connect an exchange",
            "A paper account needs no API keys; testnet and live keys are stored encrypted.",
            exchange_account_count > 0,
        ),
        ChecklistStep(
            "Build a strategy",
            "Start from a template, combine indicator conditions, or write a Python script.",
            strategies > 0,
        ),
        ChecklistStep(
            "Backtest it, then run a bot",
            "Test on real candles, run it on paper, and go live when the numbers hold up.",
            backtests > 0 or bots > 0,
        ),
    ]


def dashboard_summary_for_user(*, user: User) -> DashboardSummary:
    by_mode = exchange_account_counts_by_mode(user=user)
    total = sum(mode_count.count for mode_count in by_mode)
    recent = list(audit_events_for_user(user=user).order_by("-seq")[:RECENT_ACTIVITY_LIMIT])
    return DashboardSummary(
        exchange_account_count=total,
        exchange_accounts_by_mode=by_mode,
        recent_events=recent,
        checklist=dashboard_checklist_for_user(user=user, exchange_account_count=total),
    )


def activity_event_types_for_user(*, user: User) -> list[str]:
    return list(
        audit_events_for_user(user=user)
        .order_by("event_type")
        .values_list("event_type", flat=True)
        .distinct()
    )


def activity_events_for_user(*, user: User, event_type: str = "") -> QuerySet[AuditEvent]:
    events = audit_events_for_user(user=user).order_by("-seq")
    if event_type:
        events = events.filter(event_type=event_type)
    return events
