from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, PermissionsMixin
from django.db import models
from django.utils import timezone

from apps.accounts.managers import UserManager
from apps.common.models import BaseModel


def _default_max_bots() -> int:
    return settings.DEFAULT_MAX_BOTS


def _default_max_exchange_accounts() -> int:
    return settings.DEFAULT_MAX_EXCHANGE_ACCOUNTS


def _default_max_api_tokens() -> int:
    return settings.DEFAULT_MAX_API_TOKENS


class User(AbstractBaseUser, PermissionsMixin):
    """A trader or operator; logs in by email."""

    email = models.EmailField(unique=True)
    display_name = models.CharField(max_length=100, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="Can log in to the operator admin.")
    date_joined = models.DateTimeField(default=timezone.now)
    # Quotas: operators raise or lower them per user in the admin.
    max_bots = models.PositiveIntegerField(default=_default_max_bots)
    max_exchange_accounts = models.PositiveIntegerField(default=_default_max_exchange_accounts)
    max_api_tokens = models.PositiveIntegerField(default=_default_max_api_tokens)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email


class ApiToken(BaseModel):
    """A personal API token. Only a hash is stored; the token is shown once at creation."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    # First characters of the token, kept in clear for lookup and display.
    prefix = models.CharField(max_length=12, unique=True)
    key_hash = models.CharField(max_length=64)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
