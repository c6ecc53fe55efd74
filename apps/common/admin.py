"""Admin mixins shared by the apps: rows that operators may look at but never edit here,
because every change goes through an audited service."""

from typing import Any


class ViewOnlyMixin:
    """No add, no change; delete stays as the admin class sets it."""

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False


class ReadOnlyMixin(ViewOnlyMixin):
    """No add, no change and no delete."""

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False
