"""Operators see strategies and their versions; versions are read-only, as everywhere."""

from django.contrib import admin
from django.db.models import Count

from apps.common.admin import ReadOnlyMixin
from apps.strategies.models import Strategy, StrategyVersion


class StrategyVersionInline(ReadOnlyMixin, admin.TabularInline):
    model = StrategyVersion
    extra = 0
    can_delete = False
    show_change_link = False
    fields = ("number", "template", "params", "content_hash", "created_by", "created_at", "note")
    readonly_fields = fields
    ordering = ("-number",)


@admin.register(Strategy)
class StrategyAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "kind", "versions_count", "updated_at", "archived_at")
    list_filter = ("kind",)
    search_fields = ("name", "owner__email")
    list_select_related = ("owner",)
    # Read-only: changes go through the audited services (the product's pages and API),
    # and content changes only through new versions. Operators may still delete.
    fields = (
        "owner",
        "name",
        "description",
        "kind",
        "signal_bot",
        "created_at",
        "updated_at",
        "archived_at",
    )
    readonly_fields = fields
    inlines = (StrategyVersionInline,)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_versions_count=Count("versions"))

    @admin.display(description="versions", ordering="_versions_count")
    def versions_count(self, obj: Strategy) -> int:
        return obj._versions_count

    def has_add_permission(self, request):
        # Strategies are created through the product so that version 1 is validated.
        return False
