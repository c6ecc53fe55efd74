"""Reads for strategies, always scoped to the requesting user (a stranger gets 404)."""

from __future__ import annotations

from django.db.models import Count, Max, QuerySet
from django.shortcuts import get_object_or_404

from apps.accounts.models import User
from apps.strategies.models import Strategy, StrategyVersion


def strategy_list_for_user(*, user: User, archived: bool = False) -> QuerySet[Strategy]:
    """The user's strategies with `latest_number` and `version_count`, newest first."""
    return (
        Strategy.objects.filter(owner=user, archived_at__isnull=not archived)
        .annotate(latest_number=Max("versions__number"), version_count=Count("versions"))
        .order_by("-updated_at", "-id")
    )


def strategy_get_for_user(*, user: User, strategy_id: int) -> Strategy:
    return get_object_or_404(Strategy.objects.filter(owner=user), pk=strategy_id)


def strategy_version_get_for_user(*, user: User, version_id: int) -> StrategyVersion:
    queryset = StrategyVersion.objects.select_related("strategy", "created_by")
    return get_object_or_404(queryset, pk=version_id, strategy__owner=user)


def strategy_versions(*, strategy: Strategy) -> QuerySet[StrategyVersion]:
    """A strategy's versions, newest first (the caller already checked access)."""
    return strategy.versions.select_related("created_by").order_by("-number")


def strategy_latest_version(*, strategy: Strategy) -> StrategyVersion:
    return strategy.versions.select_related("strategy").order_by("-number").first()
