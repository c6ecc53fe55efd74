"""Operators see exchange accounts read-only; keys never reach the admin (CCXT-4, SEC-6).

Accounts are created and their keys replaced by their owners, through services that check
keys with the exchange; the admin can only delete, through the audited service.
"""

from django.contrib import admin

from apps.exchanges.models import ExchangeAccount, PaperBalance
from apps.exchanges.selectors import ENCRYPTED_FIELDS
from apps.exchanges.services import exchange_account_delete


class PaperBalanceInline(admin.TabularInline):
    model = PaperBalance
    fields = ("asset", "amount", "updated_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ExchangeAccount)
class ExchangeAccountAdmin(admin.ModelAdmin):
    list_display = ("owner", "exchange", "label", "mode", "key_last4", "created_at")
    list_filter = ("exchange", "mode")
    search_fields = ("label", "owner__email")
    list_select_related = ("owner",)
    # The encrypted columns are excluded from the form entirely, not merely hidden.
    exclude = ENCRYPTED_FIELDS
    fields = ("owner", "exchange", "label", "mode", "key_last4", "created_at", "updated_at")
    readonly_fields = fields
    inlines = [PaperBalanceInline]

    def get_queryset(self, request):
        return super().get_queryset(request).defer(*ENCRYPTED_FIELDS)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def delete_model(self, request, obj) -> None:
        exchange_account_delete(account=obj, acting_user=request.user)

    def delete_queryset(self, request, queryset) -> None:
        for account in queryset:
            exchange_account_delete(account=account, acting_user=request.user)
