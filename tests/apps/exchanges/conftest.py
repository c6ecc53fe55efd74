import secrets

import pytest

from apps.audit.models import AuditEvent
from tests.fakes.exchange import run_fake_exchange


@pytest.fixture
def fake_exchange(settings):
    """The loopback Binance/Bybit fake, with every ccxt client pointed at it."""
    with run_fake_exchange() as fake:
        settings.EXCHANGE_BASE_URL_OVERRIDE = fake.base_url
        settings.EXCHANGE_TIMEOUT_MS = 5_000
        yield fake


def new_key() -> tuple[str, str]:
    return f"key-{secrets.token_hex(12)}", f"secret-{secrets.token_hex(16)}"


def live_form(exchange: str = "binance", **overrides) -> dict[str, str]:
    api_key, api_secret = new_key()
    form = {
        "exchange": exchange,
        "label": f"{exchange} main",
        "mode": "live",
        "api_key": api_key,
        "api_secret": api_secret,
        "passphrase": "",
        "initial_balances": "",
    }
    form.update(overrides)
    return form


def exchange_events():
    """Audit events about exchange accounts and keys (logins are audited too; skip them)."""
    return AuditEvent.objects.filter(event_type__regex=r"^(exchange_account|crypto)\.").order_by(
        "seq"
    )


def audit_types() -> list[str]:
    return list(exchange_events().values_list("event_type", flat=True))
