import os

from celery import Celery

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
