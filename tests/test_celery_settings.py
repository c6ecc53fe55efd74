"""CEL-2: the Celery configuration the worker really gets (config.celery.app.conf)."""

import shlex
from pathlib import Path

import pytest

from config.celery import app

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def conf():
    app.loader.import_default_modules()  # registers every task, as a worker does at start
    return app.conf


def procfile_worker_queues(only: str | None = None) -> set[str]:
    """The queues the Procfile's Celery workers consume (`only`: that process's)."""
    queues: set[str] = set()
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        argv = shlex.split(command)
        if argv[:4] == ["celery", "-A", "config", "worker"] and only in (None, name.strip()):
            queues |= set(argv[argv.index("-Q") + 1].split(","))
    assert queues, "Procfile has no worker"
    return queues


def test_a_lost_worker_never_loses_a_task(conf):
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1


def test_time_limits_end_before_redis_redelivers(conf):
    assert conf.task_soft_time_limit < conf.task_time_limit
    assert conf.task_time_limit < conf.broker_transport_options["visibility_timeout"]
    assert conf.task_time_limit < conf.result_backend_transport_options["visibility_timeout"]


def test_no_tick_waits_for_its_eta_beyond_the_visibility_timeout(conf, settings):
    # Bot ticks are enqueued up to BOTS_SCHEDULE_AHEAD_SECONDS before their ETA.
    ahead = settings.BOTS_SCHEDULE_AHEAD_SECONDS
    assert 0 < ahead < conf.broker_transport_options["visibility_timeout"] / 10


def test_tasks_really_go_through_the_broker(conf):
    assert conf.task_always_eager is False


def test_only_json_crosses_the_broker(conf):
    assert conf.task_serializer == "json"
    assert conf.result_serializer == "json"
    assert list(conf.accept_content) == ["json"]


def test_every_routed_queue_is_consumed_by_the_procfile_worker(conf):
    consumed = procfile_worker_queues()
    routed = {route["queue"] for route in conf.task_routes.values()}
    assert routed | {conf.task_default_queue} <= consumed


def test_every_registered_task_lands_on_a_consumed_queue(conf):
    consumed = procfile_worker_queues()
    ours = [name for name in app.tasks if name.startswith("apps.")]
    assert ours, "autodiscovery found no tasks"
    for name in ours:
        queue = app.amqp.router.route({}, name, args=(), kwargs={})["queue"]
        assert queue.name in consumed, f"{name} goes to {queue.name}, which no worker consumes"


def test_alerts_have_a_worker_of_their_own():
    # A worker's main process reserves messages for busy children: an alert on a worker
    # that also runs ticks or backtests can wait behind one of them.
    assert procfile_worker_queues(only="orders") == {"orders"}
    assert "orders" not in procfile_worker_queues(only="worker")


def test_a_worker_keeps_its_database_connection_from_task_to_task(conf):
    # Without it Celery's Django fixup reconnects around every task (issue 7's latency).
    assert conf.db_reuse_max >= 100
