"""Writes for strategies: validated by the engine first, then one audited transaction.

Invalid input raises `StrategyInvalid` (each problem with its field or tree path) before
anything is written, so a refused request leaves no strategy, version or audit event.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.common.errors import ApplicationError
from apps.strategies.models import Strategy, StrategyKind, StrategyVersion, content_hash
from apps.strategies.specs import StrategyInvalid, build_content

NAME_TAKEN = "You already have a strategy with this name."


class NoChanges(ApplicationError):
    """An edit that would create a version identical to the latest one."""


def _check_name(*, owner: User, name: str, exclude_id: int | None = None) -> str:
    name = name.strip()
    if not name:
        raise StrategyInvalid([("name", "give the strategy a name")])
    if len(name) > 100:
        raise StrategyInvalid([("name", "names are at most 100 characters")])
    taken = Strategy.objects.filter(owner=owner, name__iexact=name).exclude(pk=exclude_id)
    if taken.exists():
        raise StrategyInvalid([("name", NAME_TAKEN)])
    return name


def _version_write(
    *, strategy: Strategy, number: int, content: dict[str, Any], acting_user: User, note: str
) -> StrategyVersion:
    version = StrategyVersion(
        strategy=strategy,
        number=number,
        template=content["template"],
        params=content["params"],
        entry=content["entry"],
        exit=content["exit"],
        script=content["script"],
        content_hash=content_hash(content),
        created_by=acting_user,
        note=note.strip()[:200],
    )
    version.save()
    return version


def _audit_data(version: StrategyVersion) -> dict[str, Any]:
    return {
        "strategy": version.strategy.name,
        "kind": version.strategy.kind,
        "version": version.number,
        "content_hash": version.content_hash,
        "template": version.template,
    }


@transaction.atomic
def strategy_create(
    *,
    owner: User,
    name: str,
    kind: str,
    description: str = "",
    template: str = "",
    params: Any = None,
    entry: Any = None,
    exit: Any = None,
    script: str = "",
    note: str = "",
) -> tuple[Strategy, StrategyVersion]:
    """Create a strategy and its version 1, or raise StrategyInvalid and write nothing."""
    if kind not in StrategyKind.values:
        raise StrategyInvalid([("kind", f"choose a kind: one of {', '.join(StrategyKind.values)}")])
    name = _check_name(owner=owner, name=name)
    content = build_content(
        kind=kind, template=template, params=params, entry=entry, exit=exit, script=script
    )
    strategy = Strategy(owner=owner, name=name, kind=kind, description=description.strip())
    try:
        # A savepoint, so a concurrent create with the same name fails cleanly.
        with transaction.atomic():
            strategy.save(force_insert=True)
    except IntegrityError as exc:
        raise StrategyInvalid([("name", NAME_TAKEN)]) from exc
    version = _version_write(
        strategy=strategy, number=1, content=content, acting_user=owner, note=note or "Created"
    )
    audit_record(
        event_type="strategy.created",
        actor=owner,
        owner=owner,
        target=strategy,
        data=_audit_data(version),
    )
    return strategy, version


@transaction.atomic
def strategy_version_create(
    *,
    strategy: Strategy,
    acting_user: User,
    template: str = "",
    params: Any = None,
    entry: Any = None,
    exit: Any = None,
    script: str = "",
    note: str = "",
) -> StrategyVersion:
    """Add the next version; raise NoChanges when it equals the latest one."""
    content = build_content(
        kind=strategy.kind, template=template, params=params, entry=entry, exit=exit, script=script
    )
    # Lock the strategy so two edits at once get consecutive numbers, not a clash.
    locked = Strategy.objects.select_for_update().get(pk=strategy.pk)
    if locked.is_archived:
        raise ApplicationError("This strategy is archived; it cannot get new versions.")
    latest = locked.versions.order_by("-number").first()
    digest = content_hash(content)
    if latest is not None and latest.content_hash == digest:
        raise NoChanges(f"No changes: version {latest.number} already has this content.")
    number = (locked.versions.aggregate(top=Max("number"))["top"] or 0) + 1
    version = _version_write(
        strategy=locked, number=number, content=content, acting_user=acting_user, note=note
    )
    Strategy.objects.filter(pk=locked.pk).update(updated_at=timezone.now())
    audit_record(
        event_type="strategy.version_created",
        actor=acting_user,
        owner=locked.owner,
        target=version,
        data=_audit_data(version),
    )
    return version


@transaction.atomic
def strategy_archive(*, strategy: Strategy, acting_user: User) -> Strategy:
    """Hide a strategy from the list; its versions stay for backtests and bots."""
    locked = Strategy.objects.select_for_update().get(pk=strategy.pk)
    if locked.is_archived:
        return locked
    locked.archived_at = timezone.now()
    locked.save(update_fields=["archived_at", "updated_at"])
    audit_record(
        event_type="strategy.archived",
        actor=acting_user,
        owner=locked.owner,
        target=locked,
        data={"strategy": locked.name},
    )
    return locked
