"""Perpetual futures in backtests: leverage, funding and liquidation (contract only).

`FuturesConfig` is the settings contract the backtests app stores per pair; the simulation
itself (`run_futures_backtest`) is being built on the event path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from apps.engine.simulator import SimulationConfigError

Direction = Literal["long", "short"]
MAX_LEVERAGE = 125.0


@dataclass(frozen=True)
class FuturesConfig:
    # Notional = margin x leverage; 1 means no borrowing.
    leverage: float = 1.0
    # A long strategy buys on its entry signal; a short one sells on it and buys back on exit.
    direction: Direction = "long"
    # Paid by longs to shorts when positive, per funding interval, on the position's notional.
    funding_rate: float = 0.0001
    funding_interval_hours: int = 8
    # A position is liquidated when its margin falls to this fraction of its notional.
    maintenance_margin: float = 0.005

    def validate(self) -> None:
        checks = [
            (
                "leverage",
                1 <= self.leverage <= MAX_LEVERAGE,
                f"must be between 1 and {MAX_LEVERAGE:g}",
            ),
            ("direction", self.direction in ("long", "short"), "must be 'long' or 'short'"),
            ("funding_rate", -0.01 <= self.funding_rate <= 0.01, "must be between -0.01 and 0.01"),
            (
                "funding_interval_hours",
                self.funding_interval_hours in (1, 2, 4, 8),
                "must be 1, 2, 4 or 8",
            ),
            (
                "maintenance_margin",
                0 <= self.maintenance_margin < 0.5,
                "must be a fraction below 0.5",
            ),
        ]
        for name, ok, message in checks:
            if not ok:
                raise SimulationConfigError(f"{name} {message}")
