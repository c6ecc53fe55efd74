from django_celery_beat.schedulers import DatabaseScheduler


class HeartbeatDatabaseScheduler(DatabaseScheduler):
    pass
