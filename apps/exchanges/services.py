"""Writes for exchange accounts. Every change is audited in its own transaction.

Keys are checked against the exchange BEFORE anything is written, and that network call
happens outside any transaction (house style §3.5). A key that can withdraw is refused,
and the refusal itself is audited (SEC-7) even though no account is created.
"""

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.views.decorators.debug import sensitive_variables

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.common.crypto import fingerprint, mask
from apps.common.errors import ApplicationError
from apps.common.logging import register_secret
from apps.engine.brokers import ccxt_live
from apps.exchanges.clients import client_spec, key_check
from apps.exchanges.models import ExchangeAccount, PaperBalance

Mode = ExchangeAccount.Mode

DEFAULT_PAPER_BALANCES = {"USDT": Decimal("10000")}
WITHDRAWAL_KEY_MESSAGE = (
    "This key can withdraw funds. Create a trade-only key (reading and spot trading, "
    "withdrawals disabled) on the exchange and use that one instead. Nothing was saved."
)
DUPLICATE_KEY_MESSAGE = "You have already connected an exchange account with this API key."
_ASSET_PATTERN = re.compile(r"^[A-Z0-9]{1,20}$")
_MAX_AMOUNT = Decimal(10) ** 20


def _audit_data(account: ExchangeAccount) -> dict[str, Any]:
    # Ids and labels only; the key appears as its masked last four characters at most.
    return {
        "account_id": account.pk,
        "exchange": account.exchange,
        "mode": account.mode,
        "label": account.label,
        "key_last4": account.masked_key,
    }


def _validate_exchange_and_mode(*, exchange: str, mode: str) -> None:
    if exchange not in ccxt_live.exchange_ids():
        raise ApplicationError(f"Unknown exchange “{exchange}”.", field="exchange")
    if mode not in Mode.values:
        raise ApplicationError(f"Unknown mode “{mode}”: use paper, testnet or live.", field="mode")
    if mode != Mode.PAPER and exchange not in ccxt_live.KEY_CHECK_EXCHANGE_IDS:
        supported = ", ".join(ccxt_live.KEY_CHECK_EXCHANGE_IDS)
        raise ApplicationError(
            f"Testnet and live accounts are supported on {supported} for now; "
            "other exchanges can be used in paper mode.",
            field="exchange",
        )


def _validate_balances(balances: dict[str, Decimal]) -> dict[str, Decimal]:
    cleaned: dict[str, Decimal] = {}
    for raw_asset, raw_amount in balances.items():
        asset = str(raw_asset).strip().upper()
        if not _ASSET_PATTERN.match(asset):
            message = f"“{raw_asset}” is not an asset symbol."
            raise ApplicationError(message, field="initial_balances")
        try:
            amount = Decimal(str(raw_amount))
        except InvalidOperation:
            amount = Decimal("NaN")
        if not amount.is_finite() or amount < 0 or amount >= _MAX_AMOUNT:
            raise ApplicationError(
                f"The amount for {asset} must be a number, zero or more.", field="initial_balances"
            )
        if asset in cleaned:
            raise ApplicationError(f"{asset} is listed twice.", field="initial_balances")
        cleaned[asset] = amount
    return cleaned


def _check_quota(*, owner: User) -> None:
    # Lock the owner so two concurrent creates cannot both pass the count.
    User.objects.select_for_update().filter(pk=owner.pk).first()
    limit = User.objects.values_list("max_exchange_accounts", flat=True).get(pk=owner.pk)
    if ExchangeAccount.objects.filter(owner=owner).count() >= limit:
        raise ApplicationError(
            f"You have reached your limit of {limit} exchange accounts. "
            "Delete one, or ask an operator to raise the limit."
        )


@sensitive_variables("api_key", "api_secret", "passphrase")
def _check_key(
    *,
    owner: User,
    exchange: str,
    mode: str,
    label: str,
    api_key: str,
    api_secret: str,
    passphrase: str,
    exclude_account_id: int | None = None,
) -> ccxt_live.KeyPermissions:
    """Refuse an empty, duplicate, broken or withdrawal-enabled key. Writes only on refusal."""
    if not api_key:
        raise ApplicationError(
            "Enter the API key; testnet and live accounts need one.", field="api_key"
        )
    if not api_secret:
        raise ApplicationError(
            "Enter the API secret; testnet and live accounts need one.", field="api_secret"
        )
    duplicates = ExchangeAccount.objects.filter(owner=owner, key_fingerprint=fingerprint(api_key))
    if duplicates.exclude(pk=exclude_account_id).exists():
        raise ApplicationError(DUPLICATE_KEY_MESSAGE, field="api_key")
    spec = client_spec(
        exchange=exchange, mode=mode, api_key=api_key, api_secret=api_secret, passphrase=passphrase
    )
    try:
        permissions = key_check(spec).permissions
    except ccxt_live.BrokerError as exc:
        raise ApplicationError(f"Could not verify the key: {exc}", field="api_key") from None
    if permissions.can_withdraw:
        _key_refused_record(
            owner=owner, exchange=exchange, mode=mode, label=label, masked_key=mask(api_key)
        )
        raise ApplicationError(WITHDRAWAL_KEY_MESSAGE, field="api_key")
    return permissions


@transaction.atomic
def _key_refused_record(
    *, owner: User, exchange: str, mode: str, label: str, masked_key: str
) -> None:
    # Its own transaction: the refusal stays on record although the caller raises.
    audit_record(
        event_type="exchange_account.key_refused",
        actor=owner,
        owner=owner,
        data={
            "exchange": exchange,
            "mode": mode,
            "label": label,
            "key_last4": masked_key,
            "reason": "withdrawal_permission",
        },
    )


def _register_secrets(*values: str | None) -> None:
    # Before ccxt sees them, so even its DEBUG request logs come out redacted (CCXT-4).
    for value in values:
        register_secret(value)


@sensitive_variables("api_key", "api_secret", "passphrase")
def exchange_account_create(
    *,
    owner: User,
    exchange: str,
    label: str,
    mode: str,
    api_key: str = "",
    api_secret: str = "",
    passphrase: str = "",
    initial_balances: dict[str, Decimal] | None = None,
) -> ExchangeAccount:
    """Connect an exchange account; keys are checked with the exchange before anything is saved.

    Paper accounts have no keys and start with `initial_balances` (default 10,000 USDT).
    """
    exchange, label = exchange.strip().lower(), label.strip()
    api_key, api_secret, passphrase = api_key.strip(), api_secret.strip(), passphrase.strip()
    _register_secrets(api_key, api_secret, passphrase)
    _validate_exchange_and_mode(exchange=exchange, mode=mode)
    if not label:
        raise ApplicationError("Give the account a label.", field="label")
    with transaction.atomic():
        _check_quota(owner=owner)
    balances: dict[str, Decimal] = {}
    ip_restricted = False
    if mode == Mode.PAPER:
        balances = _validate_balances(
            DEFAULT_PAPER_BALANCES if initial_balances is None else initial_balances
        )
        api_key = api_secret = passphrase = ""
    else:
        ip_restricted = _check_key(
            owner=owner,
            exchange=exchange,
            mode=mode,
            label=label,
            api_key=api_key,
            api_secret=api_secret,
            passphrase=passphrase,
        ).ip_restricted
    account = ExchangeAccount(
        owner=owner,
        exchange=exchange,
        label=label,
        mode=mode,
        api_key=api_key or None,
        api_secret=api_secret or None,
        passphrase=passphrase or None,
        key_fingerprint=fingerprint(api_key) if api_key else "",
        key_last4=api_key[-4:] if len(api_key) > 4 else "",
        key_ip_restricted=ip_restricted,
    )
    return _exchange_account_insert(account=account, balances=balances)


@transaction.atomic
def _exchange_account_insert(
    *, account: ExchangeAccount, balances: dict[str, Decimal]
) -> ExchangeAccount:
    # The quota and duplicate checks run again here: the exchange call left a window.
    _check_quota(owner=account.owner)
    try:
        with transaction.atomic():
            account.save(force_insert=True)
    except IntegrityError:
        raise ApplicationError(DUPLICATE_KEY_MESSAGE, field="api_key") from None
    PaperBalance.objects.bulk_create(
        PaperBalance(account=account, asset=asset, amount=amount)
        for asset, amount in balances.items()
    )
    data = _audit_data(account)
    data["initial_balances"] = {asset: str(amount) for asset, amount in balances.items()}
    audit_record(
        event_type="exchange_account.created",
        actor=account.owner,
        owner=account.owner,
        target=account,
        data=data,
    )
    return account


@sensitive_variables("api_key", "api_secret", "passphrase")
def exchange_account_rotate_keys(
    *,
    account: ExchangeAccount,
    acting_user: User,
    api_key: str,
    api_secret: str,
    passphrase: str = "",
) -> ExchangeAccount:
    """Replace the account's keys, checked exactly as at creation."""
    if account.mode == Mode.PAPER:
        raise ApplicationError("Paper accounts have no keys to replace.")
    api_key, api_secret, passphrase = api_key.strip(), api_secret.strip(), passphrase.strip()
    _register_secrets(api_key, api_secret, passphrase)
    permissions = _check_key(
        owner=account.owner,
        exchange=account.exchange,
        mode=account.mode,
        label=account.label,
        api_key=api_key,
        api_secret=api_secret,
        passphrase=passphrase,
        exclude_account_id=account.pk,
    )
    account.key_ip_restricted = permissions.ip_restricted
    return _exchange_account_keys_save(
        account=account,
        acting_user=acting_user,
        api_key=api_key,
        api_secret=api_secret,
        passphrase=passphrase,
    )


@sensitive_variables("api_key", "api_secret", "passphrase")
@transaction.atomic
def _exchange_account_keys_save(
    *, account: ExchangeAccount, acting_user: User, api_key: str, api_secret: str, passphrase: str
) -> ExchangeAccount:
    old_masked_key = account.masked_key
    account.api_key, account.api_secret = api_key, api_secret
    account.passphrase = passphrase or None
    account.key_fingerprint = fingerprint(api_key)
    account.key_last4 = api_key[-4:] if len(api_key) > 4 else ""
    try:
        with transaction.atomic():
            account.save(
                update_fields=[
                    "api_key",
                    "api_secret",
                    "passphrase",
                    "key_fingerprint",
                    "key_last4",
                    "key_ip_restricted",
                    "updated_at",
                ]
            )
    except IntegrityError:
        raise ApplicationError(DUPLICATE_KEY_MESSAGE, field="api_key") from None
    data = _audit_data(account)
    data["previous_key_last4"] = old_masked_key
    audit_record(
        event_type="exchange_account.keys_rotated",
        actor=acting_user,
        owner=account.owner,
        target=account,
        data=data,
    )
    return account


@transaction.atomic
def exchange_account_delete(*, account: ExchangeAccount, acting_user: User) -> None:
    audit_record(
        event_type="exchange_account.deleted",
        actor=acting_user,
        owner=account.owner,
        target=account,
        data=_audit_data(account),
    )
    account.delete()
