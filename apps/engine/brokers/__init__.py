"""Brokers: the boundary between the engine and exchanges.

`base` holds the `Broker` protocol every broker implements; `paper` is the simulated
exchange paper bots trade on (the backtest's fill model on closed candles); `ccxt_live` is
the only module in the project that imports ccxt.
"""
