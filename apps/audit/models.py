from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One append-only, hash-chained record of a state change.

    `seq` is gap-free: it is assigned as max+1 under a transaction-scoped advisory lock,
    never from a PostgreSQL sequence (those gap on rollback, which would make gaps
    meaningless). A database trigger refuses UPDATE and DELETE.
    """

    seq = models.BigIntegerField(unique=True, editable=False)
    occurred_at = models.DateTimeField(db_index=True, editable=False)
    # Who did it: a user, or None for the system (then actor_label says which part).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_label = models.CharField(max_length=150, blank=True)
    # Whose data it concerns; the tenancy key for filtering.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    event_type = models.CharField(max_length=80, db_index=True)
    target_type = models.CharField(max_length=80, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    # Ids, masks and HMACs only; never a secret.
    data = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-seq"]
        indexes = [
            models.Index(fields=["owner", "-seq"]),
            models.Index(fields=["target_type", "target_id"]),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.event_type}"
