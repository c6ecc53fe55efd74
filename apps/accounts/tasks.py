from smtplib import SMTPException

from celery import shared_task


# Sent from a worker, not the request: the reset page then answers in the same time whether
# or not the email has an account, and a slow SMTP server never holds up a web process.
@shared_task(
    autoretry_for=(SMTPException, OSError),
    retry_backoff=True,
    max_retries=3,
)
def user_password_reset_email_send(*, email: str, domain: str, use_https: bool) -> None:
    from apps.accounts.services import user_password_reset_email_send as send

    send(email=email, domain=domain, use_https=use_https)
