"""A worker that dies mid-run leaves its task "running": the beat sweep fails it, and a
redelivered message never resumes it. The real task functions, on PostgreSQL."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from apps.audit.models import AuditEvent
from apps.backtests.models import BacktestResult, BacktestTask
from apps.backtests.services import STALE_ERROR
from apps.backtests.services import run as worker
from apps.backtests.tasks import (
    STALE_AFTER,
    backtest_task_run,
    backtest_tasks_fail_stale,
)
from tests.apps.backtests.conftest import pair_input, task_create


class WorkerKilled(BaseException):
    """Stands in for SIGKILL or the OOM killer: nothing after it runs in the worker."""


@pytest.fixture
def task(alice, alice_version, candles, enqueued):
    return task_create(alice, [pair_input(alice_version), pair_input(alice_version, "BNB/USDT")])


@pytest.fixture
def killed_on_second_pair(task, monkeypatch, django_capture_on_commit_callbacks):
    """Run the task until its worker dies on the second pair (the first one is stored)."""
    real_run_one = worker._run_one

    def run_one_or_die(task_, pair):
        if pair.position == 1:
            raise WorkerKilled
        return real_run_one(task_, pair)

    monkeypatch.setattr(worker, "_run_one", run_one_or_die)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(WorkerKilled):
        backtest_task_run(task.pk)
    monkeypatch.setattr(worker, "_run_one", real_run_one)
    task.refresh_from_db()
    assert (task.status, task.progress) == ("running", 50)
    return task


def sweep(django_capture_on_commit_callbacks, *, at):
    with time_machine.travel(at, tick=False), django_capture_on_commit_callbacks(execute=True):
        return backtest_tasks_fail_stale()


def test_a_task_whose_worker_died_is_failed_audited_and_pushed(
    killed_on_second_pair, pushes, django_capture_on_commit_callbacks
):
    task = killed_on_second_pair
    last_progress = task.updated_at
    # Just inside the threshold nothing happens: a live worker could still be on the pair.
    almost = last_progress + STALE_AFTER - timedelta(seconds=1)
    assert sweep(django_capture_on_commit_callbacks, at=almost) == []
    task.refresh_from_db()
    assert task.status == "running"

    later = last_progress + STALE_AFTER + timedelta(seconds=1)
    assert sweep(django_capture_on_commit_callbacks, at=later) == [task.pk]
    task.refresh_from_db()
    assert (task.status, task.error) == ("failed", STALE_ERROR)
    assert task.error == "the worker stopped while running this backtest; run it again"
    assert task.finished_at == later
    event = AuditEvent.objects.get(event_type="backtests.task_failed")
    assert (event.actor_label, event.data["error"]) == ("backtests stale sweep", STALE_ERROR)
    assert event.target_id == str(task.pk)
    assert (pushes[-1]["status"], pushes[-1]["error"]) == ("failed", STALE_ERROR)
    # Running it again changes nothing more.
    assert sweep(django_capture_on_commit_callbacks, at=later + STALE_AFTER) == []
    assert AuditEvent.objects.filter(event_type="backtests.task_failed").count() == 1


def test_a_redelivered_message_leaves_the_dead_run_to_the_sweep(
    killed_on_second_pair, pushes, django_capture_on_commit_callbacks
):
    task = killed_on_second_pair
    events = AuditEvent.objects.count()
    # reject_on_worker_lost puts the message back; another worker picks it up at once.
    with django_capture_on_commit_callbacks(execute=True):
        assert backtest_task_run(task.pk) is False
    task.refresh_from_db()
    assert (task.status, task.progress) == ("running", 50)
    assert BacktestResult.objects.filter(pair__task=task).count() == 1  # nothing re-run
    assert AuditEvent.objects.count() == events
    later = task.updated_at + STALE_AFTER + timedelta(seconds=1)
    assert sweep(django_capture_on_commit_callbacks, at=later) == [task.pk]


def test_a_run_redelivered_while_its_worker_lives_finishes_untouched(
    task, pushes, monkeypatch, django_capture_on_commit_callbacks
):
    """Redis redelivers a message unacknowledged after the visibility timeout (300 s) even
    though a long run is still going: the duplicate and the sweep both leave it alone."""
    real_run_one = worker._run_one
    seen = []

    def run_one_with_a_duplicate(task_, pair):
        if pair.position == 1:
            seen.append(backtest_task_run(task_.pk))
            seen.append(backtest_tasks_fail_stale())
        return real_run_one(task_, pair)

    monkeypatch.setattr(worker, "_run_one", run_one_with_a_duplicate)
    with django_capture_on_commit_callbacks(execute=True):
        assert backtest_task_run(task.pk) is True
    assert seen == [False, []]
    task.refresh_from_db()
    assert (task.status, task.progress, task.error) == ("done", 100, "")
    assert BacktestResult.objects.filter(pair__task=task).count() == 2


def test_the_sweep_fails_only_running_tasks(
    task, alice, alice_version, enqueued, django_capture_on_commit_callbacks
):
    others = {}
    for status in ("queued", "done", "failed", "cancelled"):
        other = task_create(alice, [pair_input(alice_version)], name=status)
        BacktestTask.objects.filter(pk=other.pk).update(status=status)
        others[other.pk] = status
    BacktestTask.objects.filter(pk=task.pk).update(status="running", updated_at=timezone.now())
    later = timezone.now() + STALE_AFTER + timedelta(minutes=1)
    assert sweep(django_capture_on_commit_callbacks, at=later) == [task.pk]
    statuses = dict(BacktestTask.objects.filter(pk__in=others).values_list("pk", "status"))
    assert statuses == others


def test_no_live_run_can_be_stale():
    # A live execution is killed at its hard time limit, so a task idle for longer has
    # lost its worker; the margin is for clocks that differ between machines.
    assert STALE_AFTER.total_seconds() >= backtest_task_run.time_limit + 60
    assert backtest_task_run.soft_time_limit < backtest_task_run.time_limit


# transaction=True: the scheduler closes and reopens database connections as beat does.
@pytest.mark.django_db(transaction=True)
def test_beat_runs_the_sweep_every_minute_on_the_default_queue():
    from apps.common.heartbeat import HeartbeatDatabaseScheduler
    from config.celery import app

    scheduler = HeartbeatDatabaseScheduler(app=app)  # copies CELERY_BEAT_SCHEDULE at start
    entry = scheduler.schedule["backtests-fail-stale"]
    assert entry.task == backtest_tasks_fail_stale.name
    assert entry.schedule.run_every == timedelta(minutes=1)
    assert entry.options["queue"] == "default"
    stored = PeriodicTask.objects.get(name="backtests-fail-stale")
    assert (stored.enabled, stored.queue) == (True, "default")
    assert (stored.interval.every, stored.interval.period) == (60, "seconds")
    route = app.amqp.router.route(dict(entry.options), entry.task)
    assert route["queue"].name == "default"
