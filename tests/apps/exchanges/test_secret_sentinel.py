"""CCXT-4: a sentinel key and secret never leave the encrypted columns.

Everything runs with the root, ccxt and SQL loggers at DEBUG (ccxt then logs request headers
and response bodies, which carry the key) and a capturing handler added after startup, so
only the redacting LogRecord factory stands between the secrets and the log.
"""

import io
import logging
import secrets

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from apps.exchanges.models import ExchangeAccount
from tests.factories import UserFactory

SENTINEL = "SENTINEL"
ENCRYPTED_COLUMNS = ("api_key", "api_secret", "passphrase")


def sentinel_keys() -> dict[str, str]:
    return {
        "api_key": f"APIKEY-{SENTINEL}-{secrets.token_hex(8)}",
        "api_secret": f"SECRET-{SENTINEL}-{secrets.token_hex(8)}",
    }


@pytest.fixture
def debug_log_capture():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    handler.setLevel(logging.DEBUG)
    loggers = [logging.getLogger(name) for name in ("", "ccxt", "ccxt.base.exchange", "urllib3")]
    loggers.append(logging.getLogger("django.db.backends"))
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    # First in line: other handlers' redaction filters must not clean the record for it.
    logging.getLogger().handlers.insert(0, handler)
    connection.force_debug_cursor = True  # SQL and its parameters go to the log too
    yield stream
    connection.force_debug_cursor = False
    logging.getLogger().removeHandler(handler)
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


def _database_dump() -> str:
    """Every row of every table as JSON, minus the encrypted key columns."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
        tables = [row[0] for row in cursor.fetchall()]
        dump = []
        for table in tables:
            removed = " - ".join(f"'{c}'" for c in ENCRYPTED_COLUMNS)
            drop = f" - {removed}" if table == ExchangeAccount._meta.db_table else ""
            cursor.execute(f'SELECT (to_jsonb(t){drop})::text FROM "{table}" t')  # noqa: S608
            dump.extend(row[0] for row in cursor.fetchall())
    return "\n".join(dump)


def _audit_dump() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_jsonb(t)::text FROM audit_auditevent t")
        return "\n".join(row[0] for row in cursor.fetchall())


def test_sentinel_keys_appear_nowhere_but_the_encrypted_columns(
    alice, alice_client, fake_exchange, debug_log_capture
):
    bodies: list[str] = []

    def keep(response) -> None:
        assert response.status_code < 500
        bodies.append(response.content.decode())

    create_url = reverse("exchanges:create")
    for exchange in ("binance", "bybit"):
        form = {"exchange": exchange, "label": exchange, "mode": "live", **sentinel_keys()}
        response = alice_client.post(create_url, form)
        assert response.status_code == 302, response.content.decode()
        keep(response)
    # The error paths: the exchange rejects a key, or reports that it can withdraw.
    fake_exchange.fail_auth = True
    keep(alice_client.post(create_url, {**form, **sentinel_keys(), "exchange": "binance"}))
    fake_exchange.fail_auth = False
    fake_exchange.key_permissions.can_withdraw = True
    keep(alice_client.post(create_url, {**form, **sentinel_keys()}))
    fake_exchange.key_permissions.can_withdraw = False
    # The API path, on Bybit, whose query-api answer echoes the key back.
    api_url = reverse("api-exchange-account-list")
    payload = {"exchange": "bybit", "label": "api", "mode": "live", **sentinel_keys()}
    keep(alice_client.post(api_url, payload, content_type="application/json"))

    accounts = list(ExchangeAccount.objects.filter(owner=alice))
    assert len(accounts) == 3
    assert all(a.api_key.startswith(f"APIKEY-{SENTINEL}-") for a in accounts)
    account = accounts[0]
    rotate_url = reverse("exchanges:rotate_keys", args=[account.pk])
    rotated = alice_client.post(rotate_url, sentinel_keys())
    assert rotated.status_code == 302
    keep(rotated)
    account.refresh_from_db()
    keep(alice_client.get(reverse("exchanges:list")))
    keep(alice_client.get(reverse("exchanges:detail", args=[account.pk])))
    keep(alice_client.get(rotate_url))
    keep(alice_client.get(api_url))
    keep(alice_client.get(reverse("api-exchange-account-detail", args=[account.pk])))
    operator = UserFactory(email="ops@example.com", is_staff=True, is_superuser=True)
    admin_client = Client()
    admin_client.force_login(operator)
    for admin_url in (
        reverse("admin:exchanges_exchangeaccount_changelist"),
        reverse("admin:exchanges_exchangeaccount_change", args=[account.pk]),
    ):
        response = admin_client.get(admin_url)
        assert response.status_code == 200
        assert account.key_last4 in response.content.decode()
        keep(response)

    log_output = debug_log_capture.getvalue()
    # ccxt really did log its signed requests at DEBUG; the secrets in them were redacted.
    assert "Request:" in log_output
    assert "[REDACTED]" in log_output
    assert SENTINEL not in log_output
    for body in bodies:
        assert SENTINEL not in body
    assert SENTINEL not in _audit_dump()
    assert SENTINEL not in _database_dump()
