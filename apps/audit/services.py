import json
from collections.abc import Mapping, Sequence
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from apps.audit.chain import GENESIS_HASH, canonical_payload, chain_hash
from apps.audit.models import AuditEvent

# Arbitrary constant key for pg_advisory_xact_lock: serialises writers of the chain head.
_AUDIT_LOCK_KEY = 7_201_314


def _json_safe(data: dict[str, Any]) -> dict[str, Any]:
    # Round-trip so Decimals and datetimes hash exactly as they are stored.
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def audit_record(
    *,
    event_type: str,
    actor: Model | None,
    owner: Model | None = None,
    target: Model | None = None,
    data: dict[str, Any] | None = None,
    actor_label: str = "",
    owner_id: int | None = None,
) -> AuditEvent:
    """Append one event to the chain inside the caller's transaction.

    Must run inside `transaction.atomic()`: the event commits or rolls back with the
    change it describes. `owner_id` stands in for `owner` when only the id is at hand.

    The chain's lock is held from here until the transaction ends, so callers write
    their audit events last, just before the commit (reliability.md §8.2).
    """
    event = {
        "event_type": event_type,
        "actor": actor,
        "owner": owner,
        "target": target,
        "data": data,
        "actor_label": actor_label,
        "owner_id": owner_id,
    }
    return audit_record_many(events=[event])[0]


def audit_record_many(*, events: Sequence[Mapping[str, Any]]) -> list[AuditEvent]:
    """Append `events` (each with `audit_record`'s arguments) to the chain in order, with
    one lock, one read of the head and one insert: a batch of bot ticks records every
    order and rejection of its runs at once. Same rules as `audit_record`."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the caller's transaction")
    if not events:
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_AUDIT_LOCK_KEY])
    head = AuditEvent.objects.order_by("-seq").values("seq", "hash").first()
    seq = head["seq"] if head else 0
    prev_hash = head["hash"] if head else GENESIS_HASH
    rows = []
    for fields in events:
        seq += 1
        event = _event(seq=seq, prev_hash=prev_hash, fields=fields)
        prev_hash = event.hash
        rows.append(event)
    return AuditEvent.objects.bulk_create(rows)


def _event(*, seq: int, prev_hash: str, fields: Mapping[str, Any]) -> AuditEvent:
    """The chained row for one event's `audit_record` arguments (`fields`)."""
    actor, owner, target = fields.get("actor"), fields.get("owner"), fields.get("target")
    event = AuditEvent(
        seq=seq,
        occurred_at=timezone.now(),
        actor_id=actor.pk if actor is not None else None,
        actor_label=fields.get("actor_label") or (str(actor) if actor is not None else "system"),
        owner_id=owner.pk if owner is not None else fields.get("owner_id"),
        event_type=fields["event_type"],
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        data=_json_safe(fields.get("data") or {}),
        prev_hash=prev_hash,
    )
    event.hash = chain_hash(prev_hash, canonical_payload(**payload_fields(event)))
    return event


def payload_fields(event: AuditEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "occurred_at": event.occurred_at,
        "actor_id": event.actor_id,
        "actor_label": event.actor_label,
        "owner_id": event.owner_id,
        "event_type": event.event_type,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "data": event.data,
    }
