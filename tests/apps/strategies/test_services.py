"""Services and the model: validation first, nothing half-written, immutable versions."""

import copy

import pytest
from django.db import connection, transaction
from django.db.utils import InternalError, ProgrammingError

from apps.audit.models import AuditEvent
from apps.engine.backtest import StrategySpec, StrategySpecError
from apps.strategies.models import ImmutableVersionError, Strategy, StrategyVersion
from apps.strategies.services import (
    NoChanges,
    strategy_archive,
    strategy_create,
    strategy_version_create,
)
from apps.strategies.specs import EXAMPLE_SCRIPT, StrategyInvalid
from tests.apps.strategies.conftest import CROSS_ENTRY, CROSS_EXIT, sma

pytestmark = pytest.mark.django_db


def _counts():
    return Strategy.objects.count(), StrategyVersion.objects.count(), AuditEvent.objects.count()


def test_it_creates_a_template_strategy_with_resolved_params(alice):
    strategy, version = strategy_create(
        owner=alice, name="Trend", kind="template", template="sma_cross", params={"fast": 5}
    )
    assert version.number == 1
    assert version.params == {"fast": 5, "slow": 30}
    spec = version.engine_spec()
    assert isinstance(spec, StrategySpec)
    assert spec.params == {"fast": 5, "slow": 30}
    assert spec.entry == StrategySpec.from_template("sma_cross").entry
    event = AuditEvent.objects.get(event_type="strategy.created")
    assert event.owner_id == alice.pk and event.target_id == str(strategy.pk)


def test_it_creates_a_condition_strategy(alice):
    _strategy, version = strategy_create(
        owner=alice, name="Cross", kind="conditions", entry=CROSS_ENTRY, exit=CROSS_EXIT
    )
    spec = version.engine_spec()
    assert spec.kind == "conditions"
    assert spec.entry == CROSS_ENTRY
    assert len(version.content_hash) == 64


def test_it_creates_a_script_strategy_with_its_source(alice):
    _strategy, version = strategy_create(
        owner=alice, name="Script", kind="script", script=EXAMPLE_SCRIPT, params={"fast": 10}
    )
    assert version.script_source == EXAMPLE_SCRIPT
    with pytest.raises(StrategySpecError):
        version.engine_spec()


def test_event_templates_are_saved_but_have_no_condition_spec(alice):
    _strategy, version = strategy_create(
        owner=alice, name="Grid", kind="template", template="grid", params={"levels": 20}
    )
    assert version.entry is None
    assert version.params == {"levels": 20, "spacing": 0.01}
    with pytest.raises(StrategySpecError, match="event path"):
        version.engine_spec()


def test_an_invalid_tree_names_the_path_and_writes_nothing(alice):
    entry = {
        "all": [
            {"left": sma(10), "op": "crosses_above", "right": sma(30)},
            {"left": sma(0), "op": ">", "right": {"field": "close"}},
        ]
    }
    before = _counts()
    with pytest.raises(StrategyInvalid) as caught:
        strategy_create(owner=alice, name="Bad", kind="conditions", entry=entry, exit=CROSS_EXIT)
    paths = [path for path, _ in caught.value.problems]
    assert paths == ["entry.all[1].left.params.period"]
    assert _counts() == before


def test_an_unknown_indicator_parameter_is_named(alice):
    entry = {"left": {"indicator": "rsi", "params": {"length": 14}}, "op": "<", "right": 30}
    with pytest.raises(StrategyInvalid) as caught:
        strategy_create(owner=alice, name="Bad", kind="conditions", entry=entry, exit=CROSS_EXIT)
    path, message = caught.value.problems[0]
    assert path == "entry.left.params.length"
    assert "unknown parameter 'length'" in message


def test_a_template_parameter_out_of_range_is_named(alice):
    with pytest.raises(StrategyInvalid) as caught:
        strategy_create(
            owner=alice, name="T", kind="template", template="rsi_swing", params={"period": 5000}
        )
    assert caught.value.problems[0][0] == "params.period"
    assert "between 2 and 1000" in caught.value.problems[0][1]
    assert not Strategy.objects.exists()


def test_a_script_syntax_error_names_the_line(alice):
    source = "def main(sdk, params):\n    if True\n        pass\n"
    with pytest.raises(StrategyInvalid) as caught:
        strategy_create(owner=alice, name="S", kind="script", script=source)
    path, message = caught.value.problems[0]
    assert path == "script"
    assert message.startswith("line 2")
    assert not Strategy.objects.exists()


def test_a_forbidden_import_names_the_line(alice):
    source = "def main(sdk, params):\n    import socket\n"
    with pytest.raises(StrategyInvalid) as caught:
        strategy_create(owner=alice, name="S", kind="script", script=source)
    assert caught.value.problems[0][1].startswith("line 2")
    assert "socket" in caught.value.problems[0][1]


def test_names_are_unique_per_owner_but_not_across_owners(alice, charlie):
    strategy_create(owner=alice, name="Same", kind="template", template="sma_cross")
    with pytest.raises(StrategyInvalid) as caught:
        strategy_create(owner=alice, name="same", kind="template", template="sma_cross")
    assert caught.value.problems[0][0] == "name"
    strategy_create(owner=charlie, name="Same", kind="template", template="sma_cross")


def test_an_edit_makes_version_2_and_leaves_version_1_byte_identical(alice, cross_strategy):
    v1 = cross_strategy.versions.get(number=1)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT row_to_json(v)::text FROM strategies_strategyversion v WHERE id = %s", [v1.pk]
        )
        (before,) = cursor.fetchone()
    entry = copy.deepcopy(CROSS_ENTRY)
    entry["all"][0]["left"]["params"]["period"] = 12
    v2 = strategy_version_create(
        strategy=cross_strategy, acting_user=alice, entry=entry, exit=CROSS_EXIT, note="faster"
    )
    assert v2.number == 2
    assert v2.content_hash != v1.content_hash
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT row_to_json(v)::text FROM strategies_strategyversion v WHERE id = %s", [v1.pk]
        )
        (after,) = cursor.fetchone()
    assert after == before
    assert AuditEvent.objects.filter(event_type="strategy.version_created").count() == 1


def test_a_no_op_edit_creates_no_version(alice, cross_strategy):
    audits = AuditEvent.objects.count()
    with pytest.raises(NoChanges, match="No changes"):
        strategy_version_create(
            strategy=cross_strategy, acting_user=alice, entry=CROSS_ENTRY, exit=CROSS_EXIT
        )
    assert cross_strategy.versions.count() == 1
    assert AuditEvent.objects.count() == audits


def test_an_invalid_edit_writes_nothing(alice, cross_strategy):
    before = _counts()
    with pytest.raises(StrategyInvalid) as caught:
        strategy_version_create(
            strategy=cross_strategy, acting_user=alice, entry={"all": []}, exit=CROSS_EXIT
        )
    assert caught.value.problems[0][0] == "entry.all"
    assert _counts() == before


def test_a_raw_sql_update_of_a_version_is_refused(cross_strategy):
    version = cross_strategy.versions.get()
    refused = pytest.raises((InternalError, ProgrammingError), match="immutable")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE strategies_strategyversion SET note = 'tampered' WHERE id = %s",
            [version.pk],
        )
    refused = pytest.raises((InternalError, ProgrammingError), match="immutable")
    with refused, transaction.atomic():
        StrategyVersion.objects.filter(pk=version.pk).update(params={"x": 1})
    version.refresh_from_db()
    assert version.note == "Created"


def test_saving_an_existing_version_raises(cross_strategy):
    version = cross_strategy.versions.get()
    version.note = "changed"
    with pytest.raises(ImmutableVersionError):
        version.save()


def test_a_version_cannot_be_deleted_while_its_strategy_exists(cross_strategy):
    version = cross_strategy.versions.get()
    refused = pytest.raises((InternalError, ProgrammingError), match="DELETE refused")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM strategies_strategyversion WHERE id = %s", [version.pk])
        # The check is deferred to commit; make it run now, inside the test's transaction.
        cursor.execute("SET CONSTRAINTS strategies_version_delete_with_strategy IMMEDIATE")
    assert StrategyVersion.objects.filter(pk=version.pk).exists()


def test_deleting_a_strategy_takes_its_versions_with_it(cross_strategy):
    with transaction.atomic(), connection.cursor() as cursor:
        cross_strategy.delete()
        cursor.execute("SET CONSTRAINTS strategies_version_delete_with_strategy IMMEDIATE")
    assert not StrategyVersion.objects.exists()


def test_archiving_hides_the_strategy_and_blocks_new_versions(alice, cross_strategy):
    strategy_archive(strategy=cross_strategy, acting_user=alice)
    cross_strategy.refresh_from_db()
    assert cross_strategy.is_archived
    assert AuditEvent.objects.filter(event_type="strategy.archived").count() == 1
    entry = {"any": [CROSS_ENTRY]}
    with pytest.raises(Exception, match="archived"):
        strategy_version_create(
            strategy=cross_strategy, acting_user=alice, entry=entry, exit=CROSS_EXIT
        )
