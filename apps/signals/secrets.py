"""The webhook's two secrets: the URL token (256 random bits, stored as SHA-256) and the
passphrase in the body (stored salted). Both are compared in constant time (TV-1)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

MIN_PASSPHRASE_LENGTH = 12


def token_new() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def passphrase_new() -> str:
    return secrets.token_urlsafe(18)


def salt_new() -> str:
    return secrets.token_hex(16)


def passphrase_hash(passphrase: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}\x00{passphrase}".encode("utf-8", "surrogatepass")).hexdigest()


def same_secret(given_hash: str, stored_hash: str) -> bool:
    return hmac.compare_digest(given_hash.encode(), stored_hash.encode())
