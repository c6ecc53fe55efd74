"""Operators see optimisations read-only, with their chunks; cancelling goes through the
service so it is audited and the remaining chunks store nothing."""

from django.contrib import admin, messages

from apps.common.admin import ViewOnlyMixin
from apps.optimizations.models import OptimizationChunk, OptimizationTask
from apps.optimizations.services import optimization_task_cancel


class OptimizationChunkInline(ViewOnlyMixin, admin.TabularInline):
    model = OptimizationChunk
    extra = 0
    can_delete = False
    fields = ("number", "done_at")
    readonly_fields = fields


@admin.register(OptimizationTask)
class OptimizationTaskAdmin(ViewOnlyMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "owner",
        "strategy_version",
        "symbol",
        "timeframe",
        "method",
        "status",
        "progress",
        "created_at",
    )
    list_filter = ("status", "method", "exchange")
    search_fields = ("owner__email", "symbol")
    list_select_related = ("owner", "strategy_version__strategy")
    date_hierarchy = "created_at"
    exclude = ("combinations",)
    inlines = [OptimizationChunkInline]
    actions = ["cancel_tasks"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in OptimizationTask._meta.fields if f.name != "combinations"]

    @admin.action(description="Cancel the selected queued or running optimisations")
    def cancel_tasks(self, request, queryset):
        cancelled = sum(
            optimization_task_cancel(task=task, acting_user=request.user)
            for task in queryset.filter(status__in=OptimizationTask.ACTIVE)
        )
        self.message_user(request, f"Cancelled {cancelled} optimisation(s).", messages.SUCCESS)
