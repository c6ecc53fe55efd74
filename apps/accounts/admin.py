from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm

from apps.accounts.models import ApiToken, User
from apps.accounts.services import LIMIT_FIELDS, api_token_revoke, user_limits_update


class UserCreationAdminForm(AdminUserCreationForm):
    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ("email",)


class UserChangeAdminForm(UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeAdminForm
    add_form = UserCreationAdminForm
    list_display = (
        "email",
        "display_name",
        "is_active",
        "is_staff",
        "max_bots",
        "max_exchange_accounts",
        "date_joined",
    )
    list_filter = ("is_staff", "is_active")
    search_fields = ("email", "display_name")
    ordering = ("email",)
    readonly_fields = ("last_login", "date_joined")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("display_name",)}),
        ("Limits", {"fields": ("max_bots", "max_exchange_accounts", "max_api_tokens")}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "usable_password", "password1", "password2"),
            },
        ),
    )

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            super().save_model(request, obj, form, change)
            return
        # Quotas go through the audited service; the rest of the form saves as usual. The
        # admin wraps both in one transaction.
        new_limits = {name: getattr(obj, name) for name in LIMIT_FIELDS}
        for name in LIMIT_FIELDS:
            setattr(obj, name, form.initial[name])
        super().save_model(request, obj, form, change)
        user_limits_update(user=obj, acting_user=request.user, **new_limits)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("user", "name", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("user__email", "name", "prefix")
    list_select_related = ("user",)
    # The hash never reaches the admin; everything else is read-only because tokens are
    # created by their owner (who alone sees the raw value) and revoked through the action.
    fields = ("user", "name", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    actions = ("revoke_tokens",)

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke_tokens(self, request, queryset) -> None:
        count = 0
        for token in queryset.select_related("user").filter(revoked_at__isnull=True):
            api_token_revoke(user=token.user, token=token, acting_user=request.user)
            count += 1
        self.message_user(request, f"Revoked {count} token(s).", messages.SUCCESS)
