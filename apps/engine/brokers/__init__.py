"""Brokers: the boundary between the engine and exchanges.

`ccxt_live` is the only module in the project that imports ccxt.
"""
