import os

from celery import Celery

from apps.common.celery_signals import WorkerHeartbeat

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

app = Celery("tradeloop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The worker's main process reports to /healthz (apps/common/health.py).
app.steps["consumer"].add(WorkerHeartbeat)
