"""Precision for every money or quantity column, defined once (house style §3.6)."""

AMOUNT_MAX_DIGITS = 38
AMOUNT_DECIMAL_PLACES = 18
ASSET_MAX_LENGTH = 20
