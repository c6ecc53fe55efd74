"""Encryption of secrets at rest (SEC-6): MultiFernet over FIELD_ENCRYPTION_KEYS.

The first key encrypts and every key decrypts, so keys rotate by prepending a new key,
running `manage.py rotate_keys`, then dropping the old one. A token no key can decrypt
raises; ciphertext is never handed back as if it were the secret.
"""

import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from apps.common.logging import register_secret

__all__ = ["InvalidToken", "decrypt", "encrypt", "fingerprint", "mask", "reencrypt"]


@lru_cache(maxsize=8)
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: set at least one Fernet key")
    return MultiFernet([Fernet(key.encode()) for key in keys])


def _fernet() -> MultiFernet:
    return _fernet_for(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    register_secret(plaintext)
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    plaintext = _fernet().decrypt(token.encode()).decode()
    register_secret(plaintext)
    return plaintext


def reencrypt(token: str) -> str:
    """Re-encrypt a token under the primary key, keeping its timestamp."""
    return _fernet().rotate(token.encode()).decode()


def fingerprint(plaintext: str) -> str:
    """HMAC of a secret, for duplicate detection without storing it."""
    pepper = settings.KEY_FINGERPRINT_PEPPER.encode()
    return hmac.new(pepper, plaintext.encode(), hashlib.sha256).hexdigest()


def mask(plaintext: str) -> str:
    """Show only the last 4 characters."""
    return "••••" + plaintext[-4:] if len(plaintext) > 4 else "••••"
