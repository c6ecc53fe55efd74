"""A run that ends in error: the task is marked failed with a reason its owner can read.

Two ways in: the worker catches an exception (`backtest_task_fail`), or the worker died
without a word and the periodic sweep finds the task still "running" with no progress for
too long (`backtest_tasks_fail_stale`). The rules are shared with optimisations
(apps/common/jobs.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from apps.backtests.models import BacktestTask
from apps.backtests.progress import progress_push
from apps.common import jobs

STALE_ERROR = "the worker stopped while running this backtest; run it again"
BACKTEST_JOB = jobs.JobKind(
    model=BacktestTask,
    failable=(BacktestTask.Status.RUNNING,),
    event_type="backtests.task_failed",
    push=progress_push,
)


def failure_text(exc: BaseException) -> str:
    """What the owner reads about an exception that ended a run."""
    return jobs.failure_text(
        exc,
        over_time=(
            "the backtest took longer than the worker's time limit; "
            "use fewer pairs or a shorter range"
        ),
    )


def backtest_task_fail(
    *,
    task_id: int,
    error: str,
    idle_since: datetime | None = None,
    actor_label: str = "backtests worker",
) -> bool:
    """Mark a running task failed with `error`; with `idle_since`, only if it has made no
    progress since then. Returns whether it changed anything."""
    return jobs.job_fail(
        BACKTEST_JOB, job_id=task_id, error=error, actor_label=actor_label, idle_since=idle_since
    )


def backtest_tasks_fail_stale(*, idle_for: timedelta) -> list[int]:
    """Fail every running task whose last progress is older than `idle_for`; return their
    ids. (A redelivered message never resumes a running task, see `backtest_task_run`, so
    there is nothing to wait for.)"""
    return jobs.jobs_fail_stale(
        BACKTEST_JOB, idle_for=idle_for, error=STALE_ERROR, actor_label="backtests stale sweep"
    )
