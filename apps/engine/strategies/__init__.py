"""Strategies for the event path and `decide()`: condition trees, scripts, grid and DCA.

Each is a `Strategy` (base.py): `prepare(candles)` for a backtest's optional causal
precomputation, and `on_bar(ctx) -> Decision` at each closed candle.
"""
