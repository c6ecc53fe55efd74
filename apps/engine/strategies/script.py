"""Script strategies: a Python callable `main(sdk, params)` called on each closed candle.

The sandbox (another module) compiles untrusted source with RestrictedPython and wraps the
call; this adapter only takes a callable, hands it a fresh `Sdk` per bar and collects the
intents, the log lines and the JSON-checked `sdk.state`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from apps.engine.candles import CandleArrays
from apps.engine.sdk import Sdk
from apps.engine.strategies.base import BarContext, Decision

ScriptMain = Callable[[Sdk, dict[str, Any]], object]


class ScriptStrategy:
    def __init__(self, main: ScriptMain, params: Mapping[str, Any] | None = None) -> None:
        if not callable(main):
            raise TypeError("a script strategy needs a callable main(sdk, params)")
        self.main = main
        self.params = dict(params or {})

    def prepare(self, candles: CandleArrays) -> None:
        return None

    def on_bar(self, ctx: BarContext) -> Decision:
        sdk = Sdk(ctx)
        self.main(sdk, copy.deepcopy(self.params))
        return Decision(sdk.intents(), sdk.json_state(), sdk.lines())


class ScriptSpec:
    """A script strategy for `StrategyState.strategy`: its `main` callable and params."""

    __slots__ = ("main", "params")

    def __init__(self, main: ScriptMain, params: Mapping[str, Any] | None = None) -> None:
        self.main, self.params = main, dict(params or {})
