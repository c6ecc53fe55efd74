"""Brokers: the boundary between the engine and exchanges.

`base` holds the `Broker` protocol every broker implements; `paper` is the simulated
exchange paper bots trade on (the backtest's fill model on closed candles); `ccxt_orders`
holds `CcxtBroker`, the protocol on a real exchange. `ccxt_live` (clients, balances, key
checks, candles) and `ccxt_orders` are the only modules in the project that import ccxt.
"""
