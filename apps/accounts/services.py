"""Writes for accounts: every change is audited in the same transaction."""

import secrets
from functools import partial

from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import ApiToken, User
from apps.accounts.selectors import TOKEN_PREFIX_LENGTH, api_token_hash
from apps.accounts.tasks import (
    user_password_reset_email_send as user_password_reset_email_send_task,
)
from apps.audit.services import audit_record
from apps.common.errors import ApplicationError
from apps.common.logging import register_secret
from apps.common.services import model_update

DUPLICATE_EMAIL_MESSAGE = "An account with this email already exists."
# Marks our tokens so secret scanners and humans recognise a leaked one.
TOKEN_MARKER = "tl_"  # noqa: S105  (a public marker, not a secret)
RESET_EMAIL_TEMPLATE = "accounts/email/password_reset_email.txt"
RESET_SUBJECT_TEMPLATE = "accounts/email/password_reset_subject.txt"


def _check_password(password: str, *, user: User) -> None:
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise ApplicationError(" ".join(exc.messages), field="password") from exc


@transaction.atomic
def user_signup(*, email: str, password: str, display_name: str = "") -> User:
    email = User.objects.normalize_email(email.strip()).lower()
    if User.objects.filter(email__iexact=email).exists():
        raise ApplicationError(DUPLICATE_EMAIL_MESSAGE, field="email")
    user = User(email=email, display_name=display_name.strip())
    _check_password(password, user=user)
    user.set_password(password)
    try:
        # A savepoint, so a concurrent signup with the same email fails cleanly.
        with transaction.atomic():
            user.save(force_insert=True)
    except IntegrityError as exc:
        raise ApplicationError(DUPLICATE_EMAIL_MESSAGE, field="email") from exc
    audit_record(
        event_type="user.signed_up", actor=user, owner=user, target=user, data={"email": email}
    )
    return user


@transaction.atomic
def user_profile_update(*, user: User, display_name: str) -> User:
    old_display_name = user.display_name
    changed = model_update(
        instance=user, fields=["display_name"], data={"display_name": display_name.strip()}
    )
    if changed:
        audit_record(
            event_type="user.profile_updated",
            actor=user,
            owner=user,
            target=user,
            data={"display_name": {"old": old_display_name, "new": user.display_name}},
        )
    return user


LIMIT_FIELDS = ("max_bots", "max_exchange_accounts", "max_api_tokens")


@transaction.atomic
def user_limits_update(
    *,
    user: User,
    acting_user: User,
    max_bots: int,
    max_exchange_accounts: int,
    max_api_tokens: int,
) -> User:
    """An operator sets a user's quotas."""
    new = {
        "max_bots": max_bots,
        "max_exchange_accounts": max_exchange_accounts,
        "max_api_tokens": max_api_tokens,
    }
    old = {name: getattr(user, name) for name in LIMIT_FIELDS}
    if model_update(instance=user, fields=list(LIMIT_FIELDS), data=new):
        audit_record(
            event_type="user.limits_changed",
            actor=acting_user,
            owner=user,
            target=user,
            data={
                name: {"old": old[name], "new": new[name]} for name in new if old[name] != new[name]
            },
        )
    return user


def _password_set(*, user: User, new_password: str, event_type: str) -> None:
    _check_password(new_password, user=user)
    user.set_password(new_password)
    user.save(update_fields=["password"])
    audit_record(event_type=event_type, actor=user, owner=user, target=user)


@transaction.atomic
def user_password_change(*, user: User, new_password: str) -> None:
    """Set a new password; other sessions die because their auth hash no longer matches."""
    _password_set(user=user, new_password=new_password, event_type="user.password_changed")


@transaction.atomic
def user_password_reset_complete(*, user: User, new_password: str) -> None:
    _password_set(user=user, new_password=new_password, event_type="user.password_reset_completed")


def user_password_reset_email_send(*, email: str, domain: str, use_https: bool) -> None:
    """Send the reset link to the active account(s) with this email; runs in a worker."""
    form = PasswordResetForm({"email": email})
    if form.is_valid():
        form.save(
            domain_override=domain,
            use_https=use_https,
            subject_template_name=RESET_SUBJECT_TEMPLATE,
            email_template_name=RESET_EMAIL_TEMPLATE,
        )


@transaction.atomic
def user_password_reset_request(*, email: str, domain: str, use_https: bool) -> None:
    """Email a reset link to the active account with this email, if there is one.

    The caller answers the same way either way, so the page never reveals who has an account.
    """
    email = email.strip().lower()
    users = list(PasswordResetForm().get_users(email))
    for user in users:
        audit_record(
            event_type="user.password_reset_requested",
            actor=None,
            owner=user,
            target=user,
            actor_label="password reset form",
        )
    if users:
        transaction.on_commit(
            partial(
                user_password_reset_email_send_task.delay,
                email=email,
                domain=domain,
                use_https=use_https,
            )
        )


def _active_token_count(user: User) -> int:
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True).count()


@transaction.atomic
def api_token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token and return it with its raw value, which is never stored or shown again."""
    name = name.strip()
    if not name:
        raise ApplicationError("Give the token a name.", field="name")
    # Lock the user row so two concurrent creations cannot both pass the quota check.
    locked_user = User.objects.select_for_update().get(pk=user.pk)
    if _active_token_count(locked_user) >= locked_user.max_api_tokens:
        raise ApplicationError(
            f"You already have {locked_user.max_api_tokens} active API tokens, your limit. "
            "Revoke one, or contact an operator to raise the limit.",
            field="name",
        )
    raw = TOKEN_MARKER + secrets.token_urlsafe(32)
    register_secret(raw)
    token = ApiToken.objects.create(
        user=locked_user, name=name, prefix=raw[:TOKEN_PREFIX_LENGTH], key_hash=api_token_hash(raw)
    )
    audit_record(
        event_type="api_token.created",
        actor=locked_user,
        owner=locked_user,
        target=token,
        data={"token_id": token.pk, "name": token.name, "prefix": token.prefix},
    )
    return token, raw


@transaction.atomic
def api_token_revoke(*, user: User, token: ApiToken, acting_user: User | None = None) -> ApiToken:
    """Revoke one of `user`'s tokens; `acting_user` is an operator acting for them, if any."""
    if token.user_id != user.pk:
        raise ApplicationError("This token does not belong to this user.")
    revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), updated_at=timezone.now()
    )
    token.refresh_from_db()
    if revoked:
        audit_record(
            event_type="api_token.revoked",
            actor=acting_user or user,
            owner=user,
            target=token,
            data={"token_id": token.pk, "name": token.name, "prefix": token.prefix},
        )
    return token
