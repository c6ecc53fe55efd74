from django.conf import settings
from django.db import models

from apps.common.fields import EncryptedTextField
from apps.common.models import BaseModel
from apps.common.money import AMOUNT_DECIMAL_PLACES, AMOUNT_MAX_DIGITS, ASSET_MAX_LENGTH


class ExchangeAccount(BaseModel):
    """A user's account on one exchange: simulated (paper) or reached with API keys."""

    class Mode(models.TextChoices):
        PAPER = "paper", "Paper"
        TESTNET = "testnet", "Testnet"
        LIVE = "live", "Live"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="exchange_accounts"
    )
    # A ccxt exchange id, e.g. "binance".
    exchange = models.CharField(max_length=50)
    label = models.CharField(max_length=100)
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.PAPER)
    # Fernet tokens (SEC-6); NULL for paper accounts, which have no keys.
    api_key = EncryptedTextField(null=True, blank=True)
    api_secret = EncryptedTextField(null=True, blank=True)
    passphrase = EncryptedTextField(null=True, blank=True)
    # HMAC of the API key: finds "key already registered" without decrypting anything.
    key_fingerprint = models.CharField(max_length=64, blank=True, db_index=True)
    # The key's last four characters, the only part ever displayed.
    key_last4 = models.CharField(max_length=4, blank=True)
    # Whether the exchange reported an IP allowlist on the key when it was checked; keys
    # without one work from anywhere, so the detail page suggests adding one.
    key_ip_restricted = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "key_fingerprint"],
                condition=~models.Q(key_fingerprint=""),
                name="exchange_account_unique_key_per_owner",
            )
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.exchange}, {self.mode})"

    @property
    def masked_key(self) -> str:
        return f"••••{self.key_last4}" if self.key_last4 else ""

    @property
    def is_paper(self) -> bool:
        return self.mode == self.Mode.PAPER


class PaperBalance(BaseModel):
    """Simulated holdings of one asset on a paper account."""

    account = models.ForeignKey(
        ExchangeAccount, on_delete=models.CASCADE, related_name="paper_balances"
    )
    asset = models.CharField(max_length=ASSET_MAX_LENGTH)
    amount = models.DecimalField(max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES)

    class Meta:
        ordering = ["asset"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "asset"], name="paper_balance_unique_asset_per_account"
            ),
            models.CheckConstraint(
                condition=models.Q(amount__gte=0), name="paper_balance_amount_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount} {self.asset}"
