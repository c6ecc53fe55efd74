"""`manage.py rotate_keys` (SEC-6): every row ends under the new key, with no fallback."""

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command
from django.db import connection

from apps.exchanges.models import ExchangeAccount
from apps.exchanges.services import exchange_account_create
from tests.apps.exchanges.conftest import exchange_events, new_key

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def _raw_tokens() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, api_key, api_secret, passphrase FROM exchanges_exchangeaccount ORDER BY id"
        )
        return cursor.fetchall()


@pytest.fixture
def accounts_under_old_key(settings, alice, charlie, fake_exchange):
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]
    originals = {}
    for owner, exchange in ((alice, "binance"), (alice, "bybit"), (charlie, "binance")):
        api_key, api_secret = new_key()
        account = exchange_account_create(
            owner=owner,
            exchange=exchange,
            label=exchange,
            mode="live",
            api_key=api_key,
            api_secret=api_secret,
            passphrase=f"pass-{api_key}" if exchange == "bybit" else "",
        )
        originals[account.pk] = (
            api_key,
            api_secret,
            f"pass-{api_key}" if exchange == "bybit" else None,
        )
    exchange_account_create(owner=alice, exchange="okx", label="paper", mode="paper")
    return originals


def _decrypted() -> dict[int, tuple]:
    return {
        account.pk: (account.api_key, account.api_secret, account.passphrase)
        for account in ExchangeAccount.objects.exclude(mode="paper")
    }


def test_rotation_moves_every_row_to_the_new_key(settings, accounts_under_old_key, capsys):
    before = _raw_tokens()
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]

    call_command("rotate_keys")

    assert "Re-encrypted 7 secrets in 4 rows." in capsys.readouterr().out
    after = _raw_tokens()
    new_only = Fernet(NEW_KEY.encode())
    for old_row, new_row in zip(before, after, strict=True):
        for old_token, new_token in zip(old_row[1:], new_row[1:], strict=True):
            if old_token is None:
                assert new_token is None
                continue
            assert new_token != old_token
            # Same plaintext and same timestamp, now under the new key alone.
            assert new_only.decrypt(new_token.encode()) == Fernet(OLD_KEY.encode()).decrypt(
                old_token.encode()
            )
            assert new_only.extract_timestamp(new_token.encode()) == Fernet(
                OLD_KEY.encode()
            ).extract_timestamp(old_token.encode())
    event = exchange_events().get(event_type="crypto.keys_rotated")
    assert (event.data["rows"], event.data["tokens"]) == (4, 7)
    assert event.actor_id is None

    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    assert _decrypted() == accounts_under_old_key

    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]
    with pytest.raises(InvalidToken):
        _decrypted()


def test_without_rotation_dropping_the_old_key_breaks_decryption(settings, accounts_under_old_key):
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]

    with pytest.raises(InvalidToken):
        _decrypted()
