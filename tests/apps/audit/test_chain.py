import itertools

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, InternalError, connection, transaction
from django.db.utils import DatabaseError

from apps.audit.models import AuditEvent
from apps.audit.selectors import audit_chain_verify
from apps.audit.services import audit_record, audit_record_many

pytestmark = pytest.mark.django_db


def _record_events(count: int, *, actor=None) -> list[AuditEvent]:
    events = []
    for i in range(count):
        with transaction.atomic():
            events.append(audit_record(event_type="test.event", actor=actor, data={"i": i}))
    return events


def _tamper(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_append_only")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_append_only")


def test_sequence_is_gap_free_and_each_row_links_to_the_previous(alice):
    events = _record_events(5, actor=alice)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    for prev, current in itertools.pairwise(events):
        assert current.prev_hash == prev.hash
    assert events[0].actor_id == alice.pk


def test_a_rolled_back_transaction_leaves_no_gap():
    _record_events(2)
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(event_type="test.rolled_back", actor=None)
        raise RuntimeError("fault after the audit insert, before commit")
    third = _record_events(1)[0]
    assert third.seq == 3
    assert not AuditEvent.objects.filter(event_type="test.rolled_back").exists()


@pytest.mark.django_db(transaction=True)
def test_audit_record_refuses_to_run_outside_a_transaction():
    with pytest.raises(RuntimeError, match="inside the caller's transaction"):
        audit_record(event_type="test.event", actor=None)


def test_many_events_are_appended_in_order_and_the_chain_still_verifies(alice, capsys):
    _record_events(2)
    with transaction.atomic():
        many = audit_record_many(
            events=[
                {"event_type": "test.many", "actor": alice, "data": {"i": i}, "target": alice}
                for i in range(3)
            ]
        )
    _record_events(1)
    stored = list(AuditEvent.objects.order_by("seq"))
    assert [e.seq for e in stored] == [1, 2, 3, 4, 5, 6]
    assert [(e.seq, e.data) for e in many] == [(3, {"i": 0}), (4, {"i": 1}), (5, {"i": 2})]
    assert stored[2].target_id == str(alice.pk) and stored[2].actor_id == alice.pk
    call_command("audit_verify")
    assert "audit chain OK: 6 events verified" in capsys.readouterr().out


def test_verify_passes_on_a_clean_chain(capsys):
    _record_events(4)
    call_command("audit_verify")
    assert "audit chain OK: 4 events verified" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("sql", "broken_seq"),
    [
        ("UPDATE audit_auditevent SET data = '{\"i\": 99}' WHERE seq = %s", 3),
        ("DELETE FROM audit_auditevent WHERE seq = %s", 3),
        ("UPDATE audit_auditevent SET event_type = 'forged' WHERE seq = %s", 3),
    ],
)
def test_verify_names_the_first_broken_row_after_tampering(sql, broken_seq):
    _record_events(5)
    _tamper(sql, [3])
    report = audit_chain_verify()
    assert report.first_broken_seq == broken_seq
    with pytest.raises(CommandError, match=f"BROKEN at seq {broken_seq}"):
        call_command("audit_verify")


def test_verify_detects_a_swapped_pair_of_rows():
    _record_events(5)
    _tamper(
        "UPDATE audit_auditevent SET seq = CASE seq WHEN 2 THEN -4 WHEN 4 THEN -2 END "
        "WHERE seq IN (2, 4)",
        [],
    )
    _tamper("UPDATE audit_auditevent SET seq = -seq WHERE seq < 0", [])
    assert audit_chain_verify().first_broken_seq == 2


def test_raw_update_and_delete_are_refused_by_the_database():
    _record_events(2)
    for sql in ("UPDATE audit_auditevent SET event_type = 'x'", "DELETE FROM audit_auditevent"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            connection.cursor().execute(sql)
    assert AuditEvent.objects.filter(event_type="test.event").count() == 2


def test_orm_update_and_delete_are_refused():
    _record_events(1)
    with pytest.raises((InternalError, IntegrityError, DatabaseError)), transaction.atomic():
        AuditEvent.objects.update(event_type="x")
    with pytest.raises((InternalError, IntegrityError, DatabaseError)), transaction.atomic():
        AuditEvent.objects.all().delete()
