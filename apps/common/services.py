from typing import Any

from django.db import models


def model_update(*, instance: models.Model, fields: list[str], data: dict[str, Any]) -> bool:
    """Set the given fields from data, validate, and save only what changed.

    Returns whether anything was saved.
    """
    changed = [name for name in fields if name in data and getattr(instance, name) != data[name]]
    for name in changed:
        setattr(instance, name, data[name])
    if not changed:
        return False
    instance.full_clean()
    update_fields = changed
    if any(f.name == "updated_at" for f in instance._meta.get_fields()):
        update_fields = [*changed, "updated_at"]
    instance.save(update_fields=update_fields)
    return True
