import os
from typing import Any

from celery import Celery, Task
from celery.signals import task_postrun, task_prerun

from apps.common.celery_signals import WorkerHeartbeat

# Worker and beat default to dev settings. Importing this module (config/__init__ does)
# must not leak that default into child processes: config.embedded clears it again.
SETTINGS_DEFAULTED_HERE = "DJANGO_SETTINGS_MODULE" not in os.environ
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

app = Celery("tradeloop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The worker's main process reports to /healthz (apps/common/health.py).
app.steps["consumer"].add(WorkerHeartbeat)


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(sender: Task | None = None, **kwargs: Any) -> None:
    """Django's rule around each task, now that the fixup reuses connections
    (CELERY_DB_REUSE_MAX): close one that failed or outlived CONN_MAX_AGE."""
    if sender is not None and getattr(sender.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
