"""Read-only admin for the candle store. Candle lists never count or load the whole table."""

from django.contrib import admin

from apps.common.admin import ReadOnlyMixin
from apps.market.models import CandleRow, CandleSeries


class ReadOnlyAdmin(ReadOnlyMixin, admin.ModelAdmin):
    pass


@admin.register(CandleSeries)
class CandleSeriesAdmin(ReadOnlyAdmin):
    list_display = ("exchange", "symbol", "timeframe", "created_at")
    list_filter = ("exchange", "timeframe")
    search_fields = ("symbol",)


@admin.register(CandleRow)
class CandleAdmin(ReadOnlyAdmin):
    list_display = ("series", "open_time", "open", "high", "low", "close", "volume")
    list_display_links = None
    list_filter = ("series__exchange", "series__symbol", "series__timeframe")
    list_select_related = ("series",)
    # (series_id, open_time) both descending: a backward scan of the primary-key index.
    ordering = ("-series_id", "-open_time")
    sortable_by = ()
    show_full_result_count = False
    date_hierarchy = None
    actions = None
    list_per_page = 100
