"""A long job (a backtest, an optimisation) that ends in error: it is marked failed with a
reason its owner can read, audited, and its new state pushed to the page.

Two ways in: the worker catches an exception (`job_fail`), or the worker died without a
word (killed, out of memory, machine lost) and the periodic sweep finds the job still
"running" with no progress for too long (`jobs_fail_stale`). Each app describes its job
once with a `JobKind`; the models share the status vocabulary and the columns used here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.audit.services import audit_record
from apps.common.errors import ApplicationError

RUNNING = "running"
FAILED = "failed"
# Covers clocks that differ between the machines of the workers and the database.
STALE_MARGIN = timedelta(seconds=120)


@dataclass(frozen=True)
class JobKind:
    """`model` has `status`, `error`, `finished_at`, `updated_at` (bumped on progress) and
    `owner`; `failable` are the statuses a worker's failure ends; `push` publishes a job's
    state after commit."""

    model: Any
    failable: tuple[str, ...]
    event_type: str
    push: Callable[[Any], None]


def stale_after(time_limit: int) -> timedelta:
    """How long a running job may go without progress before it has surely lost its worker:
    no execution outlives its hard `time_limit` (seconds), plus the margin for clocks."""
    return timedelta(seconds=time_limit) + STALE_MARGIN


def failure_text(exc: BaseException, *, over_time: str) -> str:
    """What the owner reads about an exception that ended a run; `over_time` when the
    worker's soft time limit ended it."""
    if isinstance(exc, ApplicationError):
        return exc.message
    name = type(exc).__name__
    if name == "SoftTimeLimitExceeded":
        return over_time
    return f"{name}: {exc}"


def job_fail(
    kind: JobKind,
    *,
    job_id: int,
    error: str,
    actor_label: str,
    idle_since: datetime | None = None,
) -> bool:
    """Mark a job failed with `error` if its status is failable; with `idle_since`, only a
    running job without progress since then (the same conditional UPDATE, so progress made
    meanwhile wins). Returns whether it changed anything."""
    with transaction.atomic():
        now = timezone.now()
        jobs = kind.model.objects.filter(pk=job_id, status__in=kind.failable)
        if idle_since is not None:
            jobs = jobs.filter(status=RUNNING, updated_at__lt=idle_since)
        changed = jobs.update(status=FAILED, error=error[:2000], finished_at=now, updated_at=now)
        if changed:
            job = kind.model.objects.select_related("owner").get(pk=job_id)
            audit_record(
                event_type=kind.event_type,
                actor=None,
                actor_label=actor_label,
                owner=job.owner,
                target=job,
                data={"error": job.error},
            )
            kind.push(job)
    return bool(changed)


def jobs_fail_stale(
    kind: JobKind,
    *,
    idle_for: timedelta,
    error: str,
    actor_label: str,
    also: Callable[[datetime], Q] | None = None,
) -> list[int]:
    """Fail every running job whose last progress is older than `idle_for` (and that meets
    `also(idle_since)`, when given); return their ids.

    `idle_for` must exceed the hard time limit of the job's executions (`stale_after`):
    then no live worker can still be running such a job, so only jobs whose worker died
    are failed.
    """
    idle_since = timezone.now() - idle_for
    running = kind.model.objects.filter(status=RUNNING, updated_at__lt=idle_since)
    if also is not None:
        running = running.filter(also(idle_since))
    stale = list(running.values_list("pk", flat=True).distinct())
    return [
        job_id
        for job_id in stale
        if job_fail(
            kind, job_id=job_id, error=error, actor_label=actor_label, idle_since=idle_since
        )
    ]
