from django.db import models


class BaseModel(models.Model):
    """Abstract base with creation and update timestamps (UTC)."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
