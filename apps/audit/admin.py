from django.contrib import admin

from apps.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = (
        "seq",
        "occurred_at",
        "event_type",
        "actor_label",
        "owner",
        "target_type",
        "target_id",
    )
    list_filter = ("event_type", "target_type", "occurred_at")
    search_fields = ("event_type", "actor_label", "target_id", "hash", "owner__email")
    list_select_related = ("owner",)
    ordering = ("-seq",)
    date_hierarchy = "occurred_at"
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
