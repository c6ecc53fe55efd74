"""optimization_task_create: every bad input is refused naming its field, writing nothing;
a good one is planned (combinations, chunks), audited and enqueued after commit."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from apps.audit.models import AuditEvent
from apps.engine.optimize import search_plan
from apps.optimizations.models import OptimizationChunk, OptimizationTask
from apps.optimizations.services import (
    MAX_COMBINATIONS,
    OptimizationInvalid,
    optimization_task_create,
)
from apps.strategies.services import strategy_create
from tests.apps.optimizations.conftest import make_version, optimization_input, stored_candles


def _refused(owner, data) -> OptimizationInvalid:
    before = (OptimizationTask.objects.count(), AuditEvent.objects.count())
    with pytest.raises(OptimizationInvalid) as caught:
        optimization_task_create(owner=owner, data=data)
    after = (OptimizationTask.objects.count(), AuditEvent.objects.count())
    assert after == before, "a refused optimisation wrote something"
    assert OptimizationChunk.objects.count() == 0
    return caught.value


def test_a_grid_is_planned_audited_and_enqueued_after_commit(
    alice, alice_version, candles, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        task = optimization_task_create(owner=alice, data=optimization_input(alice_version))
    plan = search_plan("sma_cross", {"fast": [5, 10, 20], "slow": [10, 20, 30, 40]})
    assert task.combinations == plan.valid and len(task.combinations) == 9
    assert [s["params"] for s in task.skipped] == [s.params for s in plan.skipped]
    assert (task.status, task.job_count) == ("queued", 9)
    assert task.candle_count == len(stored_candles()) > 4000
    assert task.chunk_count * task.chunk_size >= 9 > (task.chunk_count - 1) * task.chunk_size
    assert sorted(enqueued) == [(task.pk, n) for n in range(task.chunk_count)]
    assert task.chunks.filter(done_at=None).count() == task.chunk_count
    event = AuditEvent.objects.get(event_type="optimizations.task_created")
    assert event.data["backtests"] == 9


def test_nothing_is_enqueued_when_the_transaction_rolls_back(
    alice, alice_version, candles, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        optimization_task_create(owner=alice, data=optimization_input(alice_version))
    assert enqueued == [] and len(callbacks) == 1


def test_parameters_left_out_keep_the_versions_values(alice, candles, enqueued):
    version = make_version(alice, name="Slow 60", fast=10, slow=60)
    task = optimization_task_create(
        owner=alice, data=optimization_input(version, space={"fast": [5, 10, 20]})
    )
    assert [c["slow"] for c in task.combinations] == [60, 60, 60]  # not the template's 30


def test_a_random_search_without_a_seed_gets_one_and_is_repeatable(alice, alice_version, candles):
    data = optimization_input(
        alice_version,
        method="random",
        samples=6,
        space={"fast": {"min": 2, "max": 40, "step": 1}, "slow": {"min": 41, "max": 200}},
    )
    first = optimization_task_create(owner=alice, data=data)
    assert first.seed is not None and len(first.combinations) == 6
    again = optimization_task_create(
        owner=alice,
        data=optimization_input(
            alice_version, method="random", samples=6, space=data.space, seed=first.seed
        ),
    )
    assert again.combinations == first.combinations


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"space": {"fats": [3, 4]}}, "space.fats"),
        ({"space": {"fast": [5, 2.5]}}, "space.fast"),
        ({"space": {"fast": {"min": 20, "max": 5, "step": 1}}}, "space.fast"),
        ({"space": {"slow": [10, 5000]}}, "space.slow"),
        ({"space": {}}, "space"),
        (
            {
                "space": {
                    "fast": {"min": 2, "max": 100, "step": 1},
                    "slow": {"min": 101, "max": 200},
                }
            },
            "space",
        ),
        ({"space": {"fast": [40], "slow": [10, 20]}}, "space"),
        ({"metric": "sharpness"}, "metric"),
        ({"method": "genetic"}, "method"),
        ({"method": "random", "samples": None}, "samples"),
        ({"method": "random", "samples": MAX_COMBINATIONS + 1}, "samples"),
        ({"method": "walk_forward", "in_sample": None, "out_of_sample": 500}, "in_sample"),
        ({"method": "walk_forward", "in_sample": 4000, "out_of_sample": 1000}, "in_sample"),
        (
            {"method": "walk_forward", "in_sample": 1000, "out_of_sample": 500, "step": 100},
            "step",
        ),
        ({"symbol": "BTC/EUR"}, "symbol"),
        ({"symbol": "bitcoin"}, "symbol"),
        ({"timeframe": "7x"}, "timeframe"),
        (
            {"start": datetime(2030, 1, 1, tzinfo=UTC), "end": datetime(2030, 2, 1, tzinfo=UTC)},
            "symbol",
        ),
        ({"end": datetime(2020, 1, 1, tzinfo=UTC)}, "end"),
        ({"start": datetime(2020, 9, 1)}, "start"),  # naive on purpose
        ({"taker_fee": Decimal("0.5")}, "taker_fee"),
        ({"initial_capital": Decimal(0)}, "initial_capital"),
        ({"sizing": "risk"}, "stop_loss"),
        ({"overfit_threshold": Decimal(0)}, "overfit_threshold"),
        ({"strategy_version_id": 987654}, "strategy_version"),
    ],
)
def test_each_bad_input_is_refused_naming_its_field(
    alice, alice_version, candles, overrides, field
):
    error = _refused(alice, optimization_input(alice_version, **overrides))
    assert error.field == field, error.problems
    assert error.message


def test_a_script_version_is_refused(alice, candles):
    _strategy, script = strategy_create(
        owner=alice,
        name="Script",
        kind="script",
        script="def main(sdk, params):\n    pass\n",
        params={"fast": 10},
    )
    error = _refused(alice, optimization_input(script, space={"fast": [5, 10]}))
    assert error.field == "strategy_version"
    assert "script" in error.message


def test_an_event_path_template_is_refused(alice, candles):
    version = make_version(alice, name="Grid bot", template="grid", levels=10)
    error = _refused(alice, optimization_input(version, space={"levels": [5, 10]}))
    assert error.field == "strategy_version"


def test_charlies_version_is_not_found_for_alice(alice, charlie, candles):
    charlies = make_version(charlie, name="Charlie's")
    error = _refused(alice, optimization_input(charlies))
    assert error.field == "strategy_version"
    assert "not found" in error.message


def test_a_too_large_grid_names_the_space_and_the_count(alice, alice_version, candles):
    space = {"fast": {"min": 2, "max": 100, "step": 1}, "slow": {"min": 101, "max": 200}}
    error = _refused(alice, optimization_input(alice_version, space=space))
    assert "9,900 combinations" in error.message
