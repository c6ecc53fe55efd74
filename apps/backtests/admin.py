"""Operators see tasks with their pairs inline and read-only results; cancelling goes
through the service so it is audited and the worker stops."""

from django.contrib import admin, messages

from apps.backtests.models import BacktestPair, BacktestResult, BacktestTask, BacktestTrade
from apps.backtests.services import backtest_task_cancel
from apps.common.admin import ViewOnlyMixin


class BacktestPairInline(ViewOnlyMixin, admin.TabularInline):
    model = BacktestPair
    extra = 0
    can_delete = False
    show_change_link = True
    fields = (
        "position",
        "symbol",
        "timeframe",
        "strategy_version",
        "initial_capital",
        "order_type",
        "limit_offset",
        "taker_fee",
        "slippage",
        "sizing",
        "size_value",
        "leverage",
        "direction",
        "status",
    )
    readonly_fields = fields


@admin.register(BacktestTask)
class BacktestTaskAdmin(ViewOnlyMixin, admin.ModelAdmin):
    list_display = ("id", "name", "owner", "status", "progress", "exchange", "created_at")
    list_filter = ("status", "market_type", "exchange")
    search_fields = ("name", "owner__email")
    list_select_related = ("owner",)
    date_hierarchy = "created_at"
    exclude = ("equity_times", "equity_values")
    readonly_fields = (
        "owner",
        "name",
        "exchange",
        "market_type",
        "start",
        "end",
        "status",
        "progress",
        "error",
        "celery_task_id",
        "started_at",
        "finished_at",
        "metrics",
        "created_at",
        "updated_at",
    )
    inlines = [BacktestPairInline]
    actions = ["cancel_tasks"]

    @admin.action(description="Cancel the selected queued or running backtests")
    def cancel_tasks(self, request, queryset):
        cancelled = sum(
            backtest_task_cancel(task=task, acting_user=request.user)
            for task in queryset.filter(status__in=BacktestTask.ACTIVE)
        )
        self.message_user(request, f"Cancelled {cancelled} backtest(s).", messages.SUCCESS)


class BacktestTradeInline(ViewOnlyMixin, admin.TabularInline):
    model = BacktestTrade
    extra = 0
    can_delete = False
    max_num = 0
    fields = (
        "number",
        "side",
        "entry_time",
        "exit_time",
        "entry_price",
        "exit_price",
        "size",
        "fee",
        "pnl",
        "exit_reason",
    )
    readonly_fields = fields


@admin.register(BacktestPair)
class BacktestPairAdmin(ViewOnlyMixin, admin.ModelAdmin):
    list_display = ("id", "task", "symbol", "timeframe", "strategy_version", "status")
    list_select_related = ("task", "strategy_version__strategy")
    search_fields = ("symbol", "task__name")
    readonly_fields = [f.name for f in BacktestPair._meta.fields]
    inlines = [BacktestTradeInline]


@admin.register(BacktestResult)
class BacktestResultAdmin(ViewOnlyMixin, admin.ModelAdmin):
    list_display = ("id", "pair", "candle_count", "created_at")
    list_select_related = ("pair__task",)
    exclude = ("times", "equity", "drawdown")
    readonly_fields = ("pair", "metrics", "candle_count", "created_at")
