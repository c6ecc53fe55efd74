"""Operators read bots and everything their runs wrote; nothing here edits a run. The
global kill switch goes through botcore's audited service."""

from django.contrib import admin, messages

from apps.bots.models import Bot, BotFill, BotLog, BotOrder, BotRun, KillSwitch
from apps.bots.services.lifecycle import global_kill_set
from apps.common.admin import ViewOnlyMixin
from apps.common.errors import ApplicationError


class BotRunInline(ViewOnlyMixin, admin.TabularInline):
    model = BotRun
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("status", "started_at", "ended_at", "ticks_done", "ticks_dropped", "last_error")
    readonly_fields = fields


@admin.register(Bot)
class BotAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "owner", "account", "timeframe", "risk_profile", "feed")
    list_filter = ("risk_profile", "feed", "kind")
    search_fields = ("name", "owner__email")
    list_select_related = ("owner", "account")
    readonly_fields = ("owner", "strategy_version", "account", "created_at", "updated_at")
    inlines = [BotRunInline]
    actions = ["global_kill_engage", "global_kill_release"]

    def _global_kill(self, request, *, engaged: bool) -> None:
        try:
            global_kill_set(engaged=engaged, acting_user=request.user, reason="admin action")
        except ApplicationError as error:
            self.message_user(request, error.message, messages.ERROR)
            return
        state = "engaged: every bot stops trading" if engaged else "released"
        self.message_user(request, f"Global kill switch {state}.", messages.WARNING)

    @admin.action(description="Global kill switch: ENGAGE for every user (selection ignored)")
    def global_kill_engage(self, request, queryset):
        self._global_kill(request, engaged=True)

    @admin.action(description="Global kill switch: release (selection ignored)")
    def global_kill_release(self, request, queryset):
        self._global_kill(request, engaged=False)


@admin.register(BotRun)
class BotRunAdmin(ViewOnlyMixin, admin.ModelAdmin):
    list_display = ("id", "bot", "status", "started_at", "last_tick_at", "ticks_done")
    list_filter = ("status",)
    search_fields = ("bot__name", "bot__owner__email")
    list_select_related = ("bot",)
    readonly_fields = [f.name for f in BotRun._meta.fields]


@admin.register(BotOrder)
class BotOrderAdmin(ViewOnlyMixin, admin.ModelAdmin):
    list_display = ("id", "bot", "symbol", "side", "type", "status", "reason", "created_at")
    list_filter = ("status", "reason", "side")
    search_fields = ("client_order_id", "bot__name")
    list_select_related = ("bot",)
    readonly_fields = [f.name for f in BotOrder._meta.fields]


@admin.register(BotFill)
class BotFillAdmin(ViewOnlyMixin, admin.ModelAdmin):
    list_display = ("id", "bot", "symbol", "side", "qty", "price", "fee", "executed_at")
    search_fields = ("fill_id", "bot__name")
    list_select_related = ("bot",)
    readonly_fields = [f.name for f in BotFill._meta.fields]


@admin.register(BotLog)
class BotLogAdmin(ViewOnlyMixin, admin.ModelAdmin):
    list_display = ("id", "bot", "level", "source", "created_at", "message")
    list_filter = ("level", "source")
    search_fields = ("bot__name", "message")
    list_select_related = ("bot",)
    readonly_fields = [f.name for f in BotLog._meta.fields]


@admin.register(KillSwitch)
class KillSwitchAdmin(ViewOnlyMixin, admin.ModelAdmin):
    list_display = ("id", "user", "engaged", "engaged_at", "engaged_by", "reason")
    readonly_fields = [f.name for f in KillSwitch._meta.fields]
