"""Reads for exchange accounts, always scoped to the requesting user."""

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from apps.accounts.models import User
from apps.exchanges.models import ExchangeAccount

# Pages and the API never need plaintext keys, so they never decrypt them.
ENCRYPTED_FIELDS = ("api_key", "api_secret", "passphrase")


def exchange_account_list_for_user(*, user: User) -> QuerySet[ExchangeAccount]:
    return ExchangeAccount.objects.filter(owner=user).defer(*ENCRYPTED_FIELDS)


def exchange_account_get_for_user(*, user: User, account_id: int) -> ExchangeAccount:
    """The user's account, or 404 when it does not exist or belongs to someone else."""
    queryset = ExchangeAccount.objects.defer(*ENCRYPTED_FIELDS).prefetch_related("paper_balances")
    return get_object_or_404(queryset, pk=account_id, owner=user)


def exchange_account_count_for_user(*, user: User) -> int:
    return ExchangeAccount.objects.filter(owner=user).count()
