"""Celery entry point for candle downloads (the `default` queue)."""

from celery import shared_task

# A few years of minute candles is a few thousand pages; the soft limit ends the run as a
# failed download (what was stored stays, and a resume continues from there).
SOFT_TIME_LIMIT = 3 * 3600
TIME_LIMIT = SOFT_TIME_LIMIT + 120


# acks_late is safe: the run starts with a conditional UPDATE queued -> running, so a
# redelivered or duplicated message finds nothing to claim and returns at once.
@shared_task(acks_late=True, soft_time_limit=SOFT_TIME_LIMIT, time_limit=TIME_LIMIT)
def candle_download_run(download_id: int) -> bool:
    from apps.market.download import candle_download_run as run

    return run(download_id=download_id)
