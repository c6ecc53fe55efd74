"""Audit of authentication events, fed by Django's auth signals.

Each receiver opens its own transaction: a failed login is not part of any write, and its
audit row must commit even though the login itself failed.
"""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.dispatch import receiver

from apps.accounts.client_ip import client_ip_address
from apps.accounts.models import User
from apps.audit.services import audit_record


def _ip(request) -> str | None:
    return client_ip_address(request) if request is not None else None


@receiver(user_logged_in, dispatch_uid="accounts.audit_logged_in")
def audit_logged_in(sender, request, user, **kwargs) -> None:
    with transaction.atomic():
        audit_record(
            event_type="user.logged_in",
            actor=user,
            owner=user,
            target=user,
            data={"ip": _ip(request)},
        )


@receiver(user_logged_out, dispatch_uid="accounts.audit_logged_out")
def audit_logged_out(sender, request, user, **kwargs) -> None:
    if user is None:
        return
    with transaction.atomic():
        audit_record(
            event_type="user.logged_out",
            actor=user,
            owner=user,
            target=user,
            data={"ip": _ip(request)},
        )


@receiver(user_login_failed, dispatch_uid="accounts.audit_login_failed")
def audit_login_failed(sender, credentials, request=None, **kwargs) -> None:
    # Only the attempted email is kept; Django has already masked the password, and we
    # never copy the credentials dict wholesale.
    email = str(credentials.get("username") or credentials.get("email") or "").strip().lower()
    account = User.objects.filter(email=email).first() if email else None
    with transaction.atomic():
        audit_record(
            event_type="user.login_failed",
            actor=None,
            actor_label="anonymous",
            owner=account,
            target=account,
            data={"email": email[:254], "ip": _ip(request)},
        )
