from dataclasses import dataclass

from django.db.models import QuerySet

from apps.audit.chain import GENESIS_HASH, canonical_payload, chain_hash
from apps.audit.models import AuditEvent
from apps.audit.services import payload_fields


@dataclass(frozen=True)
class ChainReport:
    checked: int
    first_broken_seq: int | None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.first_broken_seq is None


def audit_chain_verify(*, batch_size: int = 5000) -> ChainReport:
    """Walk the chain in seq order and report the first row that breaks it."""
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=batch_size):
        if event.seq != expected_seq:
            return ChainReport(
                checked, expected_seq, f"missing or reordered row (found seq {event.seq})"
            )
        if event.prev_hash != prev_hash:
            return ChainReport(checked, event.seq, "prev_hash does not match the previous row")
        if chain_hash(prev_hash, canonical_payload(**payload_fields(event))) != event.hash:
            return ChainReport(checked, event.seq, "content does not match its hash")
        prev_hash, expected_seq, checked = event.hash, expected_seq + 1, checked + 1
    return ChainReport(checked, None)


def audit_events_for_user(*, user) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(owner=user)
