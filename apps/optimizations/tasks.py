"""Celery entry points for optimisations (routed to the `backtests` queue by
CELERY_TASK_ROUTES): one task per chunk, so the worker's processes share the work. Beat
sends the stale sweep to the `default` queue (its CELERY_BEAT_SCHEDULE options), so chunks
and backtests queued ahead of it never delay it."""

from celery import shared_task

from apps.common.jobs import stale_after

# The project's default limits (CELERY_TASK_*_TIME_LIMIT), stated here because the stale
# sweep's threshold rests on them: a chunk is a few seconds of work (plan.CHUNK_BAR_BUDGET).
SOFT_TIME_LIMIT = 100
TIME_LIMIT = 120
# A running task without a chunk stored for this long has lost its worker.
STALE_AFTER = stale_after(TIME_LIMIT)


# acks_late is safe: a chunk stores its rows only by claiming its chunk row with a
# conditional UPDATE, so a redelivered or duplicated message stores nothing twice. A task
# whose worker died on a chunk for good is failed by the stale sweep below (beat runs it
# every minute, CELERY_BEAT_SCHEDULE in config/settings/base.py).
@shared_task(acks_late=True, soft_time_limit=SOFT_TIME_LIMIT, time_limit=TIME_LIMIT)
def optimization_chunk_run(task_id: int, chunk: int) -> bool:
    from apps.optimizations.services import optimization_chunk_run as run

    return run(task_id=task_id, chunk=chunk)


@shared_task
def optimization_tasks_fail_stale() -> list[int]:
    from apps.optimizations.services import optimization_tasks_fail_stale as fail_stale

    return fail_stale(idle_for=STALE_AFTER)
