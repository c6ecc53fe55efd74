"""Celery entry points for optimisations (routed to the `backtests` queue by
CELERY_TASK_ROUTES): one task per chunk, so the worker's processes share the work."""

from celery import shared_task


# acks_late is safe: a chunk stores its rows only by claiming its chunk row with a
# conditional UPDATE, so a redelivered or duplicated message stores nothing twice.
@shared_task(acks_late=True)
def optimization_chunk_run(task_id: int, chunk: int) -> bool:
    from apps.optimizations.services import optimization_chunk_run as run

    return run(task_id=task_id, chunk=chunk)
