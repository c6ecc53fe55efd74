"""The chunk task, called directly (as a worker process would) on real candles and real
PostgreSQL: results equal the engine's own search, each chunk counts once, and the last one
finishes the task exactly once."""

import pytest

from apps.audit.models import AuditEvent
from apps.engine.optimize import grid_search, random_search, walk_forward
from apps.optimizations.models import OptimizationRow, OptimizationTask
from apps.optimizations.services import optimization_task_cancel, optimization_task_create
from apps.optimizations.services import run as run_module
from apps.optimizations.tasks import optimization_chunk_run
from tests.apps.optimizations.conftest import (
    CONFIG,
    SMA_SPACE,
    make_version,
    optimization_input,
    run_chunks,
    stored_candles,
)

WF_SPACE = {"fast": [5, 10, 20], "slow": [30, 50, 100]}
WF = {"in_sample": 1500, "out_of_sample": 700}


@pytest.fixture
def grid_task(alice, alice_version, candles, enqueued):
    return optimization_task_create(owner=alice, data=optimization_input(alice_version))


@pytest.fixture
def wf_task(alice, alice_version, candles, enqueued):
    data = optimization_input(
        alice_version, method="walk_forward", space=WF_SPACE, metric="sharpe", **WF
    )
    return optimization_task_create(owner=alice, data=data)


def test_a_grid_ranks_like_the_engine_and_finishes_once(
    grid_task, pushes, django_capture_on_commit_callbacks
):
    # Chunks may complete in any order; the last one to complete finishes the task.
    order = list(reversed(range(grid_task.chunk_count)))
    assert run_chunks(grid_task, django_capture_on_commit_callbacks, order) == [True] * len(order)
    grid_task.refresh_from_db()
    assert (grid_task.status, grid_task.progress, grid_task.error) == ("done", 100, "")
    assert grid_task.chunks_done == grid_task.chunk_count
    engine = grid_search("sma_cross", SMA_SPACE, stored_candles(), CONFIG, metric="total_return")
    stored = list(grid_task.rows.order_by("-score", "number"))
    assert [r.params for r in stored] == [r.params for r in engine.rows]
    assert [r.score for r in stored] == [r.score for r in engine.rows]
    assert [r.metrics for r in stored] == [r.metrics.as_dict() for r in engine.rows]
    best = grid_task.summary["best"]
    assert best["params"] == engine.best.params and best["score"] == engine.best.score
    assert AuditEvent.objects.filter(event_type="optimizations.task_finished").count() == 1
    assert [s["status"] for s in pushes][-1] == "done"
    assert [s["progress"] for s in pushes] == sorted(s["progress"] for s in pushes)


def test_a_duplicate_delivery_of_a_chunk_counts_once(
    grid_task, pushes, django_capture_on_commit_callbacks
):
    assert grid_task.chunk_count >= 3
    with django_capture_on_commit_callbacks(execute=True):
        assert optimization_chunk_run(grid_task.pk, 0) is True
        assert optimization_chunk_run(grid_task.pk, 0) is False  # redelivered
    grid_task.refresh_from_db()
    assert grid_task.chunks_done == 1
    assert grid_task.rows.count() == grid_task.chunk_size
    run_chunks(grid_task, django_capture_on_commit_callbacks, range(1, grid_task.chunk_count))
    with django_capture_on_commit_callbacks(execute=True):
        assert optimization_chunk_run(grid_task.pk, 1) is False  # after the finish, too
    grid_task.refresh_from_db()
    assert grid_task.status == "done" and grid_task.chunks_done == grid_task.chunk_count
    assert grid_task.rows.count() == grid_task.job_count == 9
    assert AuditEvent.objects.filter(event_type="optimizations.task_finished").count() == 1


def test_a_chunk_delivered_while_another_stores_it_stores_nothing(
    grid_task, pushes, monkeypatch, django_capture_on_commit_callbacks
):
    # Both deliveries evaluate; the second reaches the claim after the first committed.
    real_evaluate = run_module._evaluate_chunk

    def evaluate_then_race(task, chunk):
        rows = real_evaluate(task, chunk)
        monkeypatch.setattr(run_module, "_evaluate_chunk", real_evaluate)
        assert optimization_chunk_run(task.pk, chunk) is True  # the other delivery wins
        return rows

    monkeypatch.setattr(run_module, "_evaluate_chunk", evaluate_then_race)
    with django_capture_on_commit_callbacks(execute=True):
        assert optimization_chunk_run(grid_task.pk, 0) is False
    grid_task.refresh_from_db()
    assert grid_task.chunks_done == 1 and grid_task.status == "running"
    assert grid_task.rows.count() == grid_task.chunk_size


def test_a_redelivered_last_chunk_finishes_a_task_whose_finisher_died(
    grid_task, pushes, monkeypatch, django_capture_on_commit_callbacks
):
    run_chunks(grid_task, django_capture_on_commit_callbacks, range(grid_task.chunk_count - 1))

    def die(task_id):
        raise SystemExit("worker killed")  # not an Exception: nothing marks the task failed

    monkeypatch.setattr(run_module, "_finish_or_fail", die)
    last = grid_task.chunk_count - 1
    with pytest.raises(SystemExit), django_capture_on_commit_callbacks(execute=True):
        optimization_chunk_run(grid_task.pk, last)
    grid_task.refresh_from_db()
    assert (grid_task.status, grid_task.chunks_done) == ("running", grid_task.chunk_count)
    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True):
        assert optimization_chunk_run(grid_task.pk, last) is False  # stored nothing new
    grid_task.refresh_from_db()
    assert grid_task.status == "done" and grid_task.summary["best"]["params"]


def test_walk_forward_equals_the_engines_windows_and_verdict(
    wf_task, pushes, django_capture_on_commit_callbacks
):
    run_chunks(wf_task, django_capture_on_commit_callbacks)
    wf_task.refresh_from_db()
    assert wf_task.status == "done", wf_task.error
    engine = walk_forward("sma_cross", WF_SPACE, stored_candles(), CONFIG, metric="sharpe", **WF)
    expected = engine.as_dict()
    summary = wf_task.summary
    assert len(summary["windows"]) == len(engine.windows) == 4  # (4338 - 1500) // 700
    for key in ("mean_is_score", "mean_oos_score", "efficiency", "overfit", "warning"):
        assert summary[key] == expected[key], key
    assert summary["total_return"] == pytest.approx(expected["total_return"], rel=1e-12)
    for stored, window in zip(summary["windows"], engine.windows, strict=True):
        assert stored["best_params"] == window.best_params
        assert (stored["is_score"], stored["oos_score"]) == (window.is_score, window.oos_score)
        assert stored["overfit"] == window.overfit
        best = wf_task.rows.get(number=stored["best_row"])
        assert best.params == window.best_params and best.window == window.index
    assert wf_task.rows.count() == wf_task.job_count == 4 * 9
    assert set(wf_task.rows.values_list("window", flat=True)) == {0, 1, 2, 3}


def test_cancelling_stops_the_remaining_chunks(
    grid_task, alice, pushes, django_capture_on_commit_callbacks
):
    run_chunks(grid_task, django_capture_on_commit_callbacks, [0])
    with django_capture_on_commit_callbacks(execute=True):
        assert optimization_task_cancel(task=grid_task, acting_user=alice) is True
        assert optimization_task_cancel(task=grid_task, acting_user=alice) is False
    results = run_chunks(grid_task, django_capture_on_commit_callbacks, range(1, 3))
    assert results == [False, False]
    grid_task.refresh_from_db()
    assert grid_task.status == "cancelled" and grid_task.chunks_done == 1
    assert grid_task.rows.count() == grid_task.chunk_size
    assert pushes[-1]["status"] == "cancelled"


def test_a_cancel_during_a_chunk_keeps_its_rows_out(
    grid_task, alice, pushes, monkeypatch, django_capture_on_commit_callbacks
):
    real_evaluate = run_module._evaluate_chunk

    def evaluate_then_cancel(task, chunk):
        rows = real_evaluate(task, chunk)
        optimization_task_cancel(task=task, acting_user=alice)  # the owner presses Cancel
        return rows

    monkeypatch.setattr(run_module, "_evaluate_chunk", evaluate_then_cancel)
    run_chunks(grid_task, django_capture_on_commit_callbacks, [0])
    grid_task.refresh_from_db()
    assert (grid_task.status, grid_task.chunks_done) == ("cancelled", 0)
    assert OptimizationRow.objects.filter(task=grid_task).count() == 0


def test_candles_that_changed_since_planning_fail_the_task_with_the_reason(
    grid_task, pushes, django_capture_on_commit_callbacks
):
    from apps.market.models import Candle

    Candle.objects.filter(series__symbol="BTC/USDT", open_time__gte=grid_task.start).order_by(
        "open_time"
    ).first().delete()
    run_chunks(grid_task, django_capture_on_commit_callbacks, [0])
    grid_task.refresh_from_db()
    assert grid_task.status == "failed"
    assert "changed while optimising" in grid_task.error
    assert AuditEvent.objects.filter(event_type="optimizations.task_failed").count() == 1
    assert pushes[-1]["status"] == "failed"


def test_a_chunk_of_a_deleted_task_does_nothing(grid_task, django_capture_on_commit_callbacks):
    task_id = grid_task.pk
    OptimizationTask.objects.filter(pk=task_id).delete()
    with django_capture_on_commit_callbacks(execute=True):
        assert optimization_chunk_run(task_id, 0) is False


def test_a_random_search_ranks_like_the_engine_with_the_same_seed(
    alice, alice_version, candles, enqueued, pushes, django_capture_on_commit_callbacks
):
    space = {"fast": {"random": "int", "min": 3, "max": 40}, "slow": {"min": 50, "max": 200}}
    data = optimization_input(alice_version, method="random", samples=12, seed=7, space=space)
    task = optimization_task_create(owner=alice, data=data)
    run_chunks(task, django_capture_on_commit_callbacks)
    task.refresh_from_db()
    engine = random_search(
        "sma_cross", space, stored_candles(), CONFIG, samples=12, seed=7, metric="total_return"
    )
    stored = list(task.rows.order_by("-score", "number").values_list("params", "score"))
    assert stored == [(row.params, row.score) for row in engine.rows]
    assert task.summary["best"]["params"] == engine.best.params


def test_the_weighted_composers_threshold_and_weights_are_searched_like_the_engine(
    alice, candles, enqueued, pushes, django_capture_on_commit_callbacks
):
    version = make_version(alice, name="Composer", template="composer", threshold=2)
    space = {"threshold": [1, 2, 3], "trend_weight": [0.5, 1, 2]}
    task = optimization_task_create(owner=alice, data=optimization_input(version, space=space))
    run_chunks(task, django_capture_on_commit_callbacks)
    task.refresh_from_db()
    assert task.status == "done", task.error
    engine = grid_search("composer", space, stored_candles(), CONFIG, metric="total_return")
    stored = list(task.rows.order_by("-score", "number").values_list("params", "score"))
    assert stored == [(row.params, row.score) for row in engine.rows]
