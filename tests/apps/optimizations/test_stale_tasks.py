"""A worker that dies on a chunk leaves its optimisation "running": the beat sweep fails it
once no chunk has been stored for longer than any live chunk can take, while a chunk that
is redelivered in time carries the task on. The real task functions, on PostgreSQL."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from apps.audit.models import AuditEvent
from apps.optimizations.models import OptimizationTask
from apps.optimizations.services import STALE_ERROR, optimization_task_create
from apps.optimizations.services import run as worker
from apps.optimizations.tasks import (
    STALE_AFTER,
    optimization_chunk_run,
    optimization_tasks_fail_stale,
)
from tests.apps.optimizations.conftest import optimization_input, run_chunks


class WorkerKilled(BaseException):
    """Stands in for SIGKILL or the OOM killer: nothing after it runs in the worker."""


@pytest.fixture
def task(alice, alice_version, candles, enqueued):
    return optimization_task_create(owner=alice, data=optimization_input(alice_version))


@pytest.fixture
def killed_on_second_chunk(task, monkeypatch, django_capture_on_commit_callbacks):
    """Store chunk 0, then let the worker die on chunk 1."""
    assert run_chunks(task, django_capture_on_commit_callbacks, [0]) == [True]

    def die(task_, chunk):
        raise WorkerKilled

    monkeypatch.setattr(worker, "_evaluate_chunk", die)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(WorkerKilled):
        optimization_chunk_run(task.pk, 1)
    monkeypatch.undo()
    task.refresh_from_db()
    assert (task.status, task.chunks_done) == ("running", 1)
    return task


def sweep(django_capture_on_commit_callbacks, *, at):
    with time_machine.travel(at, tick=False), django_capture_on_commit_callbacks(execute=True):
        return optimization_tasks_fail_stale()


def test_a_task_whose_worker_died_is_failed_audited_and_pushed(
    killed_on_second_chunk, pushes, django_capture_on_commit_callbacks
):
    task = killed_on_second_chunk
    last_progress = task.updated_at
    # Just inside the threshold nothing happens: a live worker could still be on the chunk.
    almost = last_progress + STALE_AFTER - timedelta(seconds=1)
    assert sweep(django_capture_on_commit_callbacks, at=almost) == []
    task.refresh_from_db()
    assert task.status == "running"

    later = last_progress + STALE_AFTER + timedelta(seconds=1)
    assert sweep(django_capture_on_commit_callbacks, at=later) == [task.pk]
    task.refresh_from_db()
    assert (task.status, task.error) == ("failed", STALE_ERROR)
    assert task.error == "the worker stopped while running this optimisation; run it again"
    assert task.finished_at == later
    event = AuditEvent.objects.get(event_type="optimizations.task_failed")
    assert (event.actor_label, event.data["error"]) == ("optimisations stale sweep", STALE_ERROR)
    assert event.target_id == str(task.pk)
    assert (pushes[-1]["status"], pushes[-1]["error"]) == ("failed", STALE_ERROR)
    # Running it again changes nothing more, and a late redelivery stores nothing.
    assert sweep(django_capture_on_commit_callbacks, at=later + STALE_AFTER) == []
    assert AuditEvent.objects.filter(event_type="optimizations.task_failed").count() == 1
    assert run_chunks(task, django_capture_on_commit_callbacks, [1]) == [False]
    task.refresh_from_db()
    assert (task.status, task.chunks_done, task.rows.count()) == ("failed", 1, 1)


def test_a_chunk_redelivered_in_time_carries_the_task_on(
    killed_on_second_chunk, pushes, django_capture_on_commit_callbacks
):
    task = killed_on_second_chunk
    last_progress = task.updated_at
    # reject_on_worker_lost puts the message back; another worker stores the chunk.
    with time_machine.travel(last_progress + STALE_AFTER / 2, tick=False):
        assert run_chunks(task, django_capture_on_commit_callbacks, [1]) == [True]
    later = last_progress + STALE_AFTER + timedelta(seconds=1)
    assert sweep(django_capture_on_commit_callbacks, at=later) == []
    rest = range(2, task.chunk_count)
    assert run_chunks(task, django_capture_on_commit_callbacks, rest) == [True] * len(rest)
    task.refresh_from_db()
    assert (task.status, task.progress, task.error) == ("done", 100, "")
    assert not AuditEvent.objects.filter(event_type="optimizations.task_failed").exists()


def test_a_task_whose_chunk_is_running_is_left_alone(
    task, pushes, monkeypatch, django_capture_on_commit_callbacks
):
    real_evaluate = worker._evaluate_chunk
    seen = []

    def evaluate_while_sweeping(task_, chunk):
        seen.append(optimization_tasks_fail_stale())
        return real_evaluate(task_, chunk)

    monkeypatch.setattr(worker, "_evaluate_chunk", evaluate_while_sweeping)
    assert run_chunks(task, django_capture_on_commit_callbacks) == [True] * task.chunk_count
    assert seen == [[]] * task.chunk_count
    task.refresh_from_db()
    assert (task.status, task.progress, task.error) == ("done", 100, "")


def test_the_sweep_fails_only_running_tasks(
    task, alice, alice_version, enqueued, django_capture_on_commit_callbacks
):
    others = {}
    for status in ("queued", "done", "failed", "cancelled"):
        other = optimization_task_create(owner=alice, data=optimization_input(alice_version))
        OptimizationTask.objects.filter(pk=other.pk).update(status=status)
        others[other.pk] = status
    OptimizationTask.objects.filter(pk=task.pk).update(status="running", updated_at=timezone.now())
    task.chunks.filter(number=0).update(started_at=timezone.now())
    later = timezone.now() + STALE_AFTER + timedelta(minutes=1)
    assert sweep(django_capture_on_commit_callbacks, at=later) == [task.pk]
    statuses = dict(OptimizationTask.objects.filter(pk__in=others).values_list("pk", "status"))
    assert statuses == others


def test_chunks_waiting_in_the_queue_never_make_a_task_stale(
    task, pushes, django_capture_on_commit_callbacks
):
    # Chunk 0 is stored; the others wait behind long backtests on the shared queue.
    assert run_chunks(task, django_capture_on_commit_callbacks, [0]) == [True]
    task.refresh_from_db()
    much_later = task.updated_at + 10 * STALE_AFTER
    assert sweep(django_capture_on_commit_callbacks, at=much_later) == []
    task.refresh_from_db()
    assert task.status == "running"
    rest = range(1, task.chunk_count)
    with time_machine.travel(much_later, tick=False):
        assert run_chunks(task, django_capture_on_commit_callbacks, rest) == [True] * len(rest)
    task.refresh_from_db()
    assert (task.status, task.progress) == ("done", 100)


def test_no_live_chunk_can_be_stale():
    # A live chunk is killed at its hard time limit, so a task idle for longer has lost its
    # worker; the margin is for clocks that differ between machines.
    assert STALE_AFTER.total_seconds() >= optimization_chunk_run.time_limit + 60
    assert optimization_chunk_run.soft_time_limit < optimization_chunk_run.time_limit


# transaction=True: the scheduler closes and reopens database connections as beat does.
@pytest.mark.django_db(transaction=True)
def test_beat_runs_the_sweep_every_minute_on_the_default_queue():
    from apps.common.heartbeat import HeartbeatDatabaseScheduler
    from config.celery import app

    scheduler = HeartbeatDatabaseScheduler(app=app)  # copies CELERY_BEAT_SCHEDULE at start
    entry = scheduler.schedule["optimizations-fail-stale"]
    assert entry.task == optimization_tasks_fail_stale.name
    assert entry.schedule.run_every == timedelta(minutes=1)
    stored = PeriodicTask.objects.get(name="optimizations-fail-stale")
    assert (stored.enabled, stored.queue) == (True, "default")
    # Chunks go to the `backtests` queue; the sweep must not wait behind them.
    route = app.amqp.router.route(dict(entry.options), entry.task)
    assert route["queue"].name == "default"
