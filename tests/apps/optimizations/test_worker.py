"""Grid search and walk-forward through a real Celery worker (two prefork processes on the
`backtests` queue, the test's PostgreSQL and Redis, never eager): the chunks run side by
side, the task finishes once, and the results are the engine's own on the same candles."""

import subprocess
import sys
import time

import pytest

from apps.audit.models import AuditEvent
from apps.engine.optimize import grid_search, walk_forward
from apps.optimizations.models import OptimizationTask
from apps.optimizations.services import optimization_task_create
from tests.apps.common.processes import process_group_stop, process_start, subprocess_env
from tests.apps.optimizations.conftest import (
    CONFIG,
    import_btc_candles,
    make_version,
    optimization_input,
    stored_candles,
)

pytestmark = pytest.mark.django_db(transaction=True)
WORKER = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "backtests", "-c", "2"]
# Generous for a loaded machine: the runs take a few seconds once the worker is up.
WAIT_SECONDS = 120


@pytest.fixture
def worker(tmp_path):
    log = tmp_path / "worker.log"
    process = process_start(WORKER, env=subprocess_env(key_prefix="tltest-optim"), log=log)
    yield process, log
    process_group_stop(process)


def wait_until_finished(task_id: int, worker) -> OptimizationTask:
    process, log = worker
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        task = OptimizationTask.objects.get(pk=task_id)
        if not task.is_active:
            return task
        assert process.poll() is None, log.read_text()[-4000:]
        time.sleep(0.2)
    raise AssertionError(f"still {task.status} after {WAIT_SECONDS}s\n{log.read_text()[-4000:]}")


def test_a_grid_search_runs_through_the_worker(alice, worker: tuple[subprocess.Popen, object]):
    import_btc_candles()
    version = make_version(alice)
    space = {"fast": {"min": 4, "max": 24, "step": 4}, "slow": [30, 50, 80, 120]}
    task = optimization_task_create(
        owner=alice, data=optimization_input(version, space=space, metric="sharpe")
    )
    assert task.chunk_count > 2  # enough chunks for both worker processes
    task = wait_until_finished(task.pk, worker)
    assert task.status == "done", task.error
    engine = grid_search("sma_cross", space, stored_candles(), CONFIG, metric="sharpe")
    assert task.summary["best"]["params"] == engine.best.params
    assert task.summary["best"]["score"] == engine.best.score
    stored = list(task.rows.order_by("-score", "number").values_list("params", "score"))
    assert stored == [(row.params, row.score) for row in engine.rows]
    assert task.chunks_done == task.chunk_count and task.chunks.filter(done_at=None).count() == 0
    assert AuditEvent.objects.filter(event_type="optimizations.task_finished").count() == 1


def test_a_walk_forward_runs_through_the_worker(alice, worker):
    import_btc_candles()
    version = make_version(alice)
    space = {"fast": [5, 10, 20], "slow": [30, 50, 100]}
    windows = {"in_sample": 1200, "out_of_sample": 600}
    task = optimization_task_create(
        owner=alice,
        data=optimization_input(
            version, method="walk_forward", space=space, metric="sharpe", **windows
        ),
    )
    task = wait_until_finished(task.pk, worker)
    assert task.status == "done", task.error
    engine = walk_forward(
        "sma_cross", space, stored_candles(), CONFIG, metric="sharpe", **windows
    ).as_dict()
    summary = task.summary
    assert [w["best_params"] for w in summary["windows"]] == [
        w["best_params"] for w in engine["windows"]
    ]
    assert [(w["is_score"], w["oos_score"]) for w in summary["windows"]] == [
        (w["is_score"], w["oos_score"]) for w in engine["windows"]
    ]
    assert (summary["efficiency"], summary["overfit"]) == (engine["efficiency"], engine["overfit"])
