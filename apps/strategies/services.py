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
from apps.strategies.recorded import Alert, recorded_content, recorded_name
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
    return _version_append(locked=locked, content=content, acting_user=acting_user, note=note)


def _version_append(
    *,
    locked: Strategy,
    content: dict[str, Any],
    acting_user: User,
    note: str,
    audit_extra: dict[str, Any] | None = None,
) -> StrategyVersion:
    """Write the next version of a strategy the caller has locked, and audit it."""
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
        data={**_audit_data(version), **(audit_extra or {})},
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


def _recorded_strategy(*, bot: Any) -> Strategy:
    """The bot's recorded strategy, locked; created on first use (a name taken by one of
    the owner's own strategies gets the bot's id appended)."""
    found = Strategy.objects.select_for_update().filter(signal_bot=bot).first()
    if found is not None:
        return found
    name = recorded_name(bot.name)
    if Strategy.objects.filter(owner=bot.owner, name__iexact=name).exists():
        name = recorded_name(f"{bot.name[:85]} (bot #{bot.pk})")
    strategy = Strategy(
        owner=bot.owner,
        name=name,
        kind=StrategyKind.RECORDED,
        signal_bot=bot,
        description=f"Accepted alerts of the signal bot “{bot.name}”, snapshotted for backtests.",
    )
    try:
        with transaction.atomic():
            strategy.save(force_insert=True)
    except IntegrityError:
        # A concurrent first snapshot of the same bot created it.
        return Strategy.objects.select_for_update().get(signal_bot=bot)
    audit_record(
        event_type="strategy.created",
        actor=bot.owner,
        owner=bot.owner,
        target=strategy,
        data={"strategy": strategy.name, "kind": strategy.kind, "signal_bot": bot.pk},
    )
    return strategy


@transaction.atomic
def strategy_recorded_snapshot(
    *, bot: Any, acting_user: Any, alerts: dict[str, list[Alert]]
) -> StrategyVersion:
    """The version holding `alerts` of the signal `bot`: its latest version when that
    already holds exactly these alerts, else a new one (audited)."""
    content = recorded_content(alerts)
    strategy = _recorded_strategy(bot=bot)
    digest = content_hash(content)
    latest = strategy.versions.select_related("strategy").order_by("-number").first()
    if latest is not None and latest.content_hash == digest:
        return latest
    count = sum(len(items) for items in content["params"]["alerts"].values())
    return _version_append(
        locked=strategy,
        content=content,
        acting_user=acting_user,
        note=f"{count} alerts on {len(content['params']['alerts'])} symbols",
        audit_extra={"signal_bot": bot.pk, "alerts": count},
    )
