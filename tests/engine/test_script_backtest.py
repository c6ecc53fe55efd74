"""`run_script_backtest`: a script strategy backtested through the sandbox child.

The script runs bar by bar on the event path inside the locked-down child; the parent
rebuilds the same `BacktestReport` a condition strategy gets. Errors come back as
`ScriptBacktestError` with the sandbox's kind and the script's line, never as a crash of
the calling process.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.engine.backtest import StrategySpec, run_backtest
from apps.engine.candles import read_csv
from apps.engine.event_book import EventConfig
from apps.engine.sandbox import SandboxLimits
from apps.engine.script_backtest import (
    ScriptBacktestError,
    ScriptBacktestReport,
    run_script_backtest,
)
from apps.engine.simulator import ExecutionConfig

DATA = Path(__file__).resolve().parents[2] / "data" / "candles"
# A few thousand hourly bars: enough for dozens of crosses, quick in the child.
CANDLES = read_csv(DATA / "BTC-USD_1h.csv").head(3000)
FAST = SandboxLimits(cpu_seconds=2, wall_seconds=10, memory_mb=256)

SMA_CROSS = """\
def main(sdk, params):
    fast, slow = sdk.sma(params["fast"]), sdk.sma(params["slow"])
    if len(sdk.candles) < 2:
        return
    if sdk.position.size == 0 and fast[-2] < slow[-2] and fast[-1] > slow[-1]:
        sdk.buy()
    elif sdk.position.size > 0 and fast[-2] > slow[-2] and fast[-1] < slow[-1]:
        sdk.close()
"""


def expect_error(source: str, kind: str, limits: SandboxLimits = FAST) -> ScriptBacktestError:
    with pytest.raises(ScriptBacktestError) as caught:
        run_script_backtest(source, {}, CANDLES.head(50), ExecutionConfig(), limits)
    error = caught.value
    assert error.kind == kind, str(error)
    assert f"({kind})" in str(error)
    return error


@pytest.mark.parametrize(
    "config",
    [
        ExecutionConfig(fee=0.001),
        ExecutionConfig(fee=0.001, slippage=0.0005, stop_loss=0.03, take_profit=0.06),
        ExecutionConfig(sizing="percent", size_value=0.5, trailing_stop=0.04),
    ],
    ids=["fee", "stops", "percent-trailing"],
)
def test_a_script_sma_cross_trades_exactly_like_the_template(config: ExecutionConfig) -> None:
    params = {"fast": 10, "slow": 30}
    script = run_script_backtest(SMA_CROSS, params, CANDLES, config)
    template = run_backtest(StrategySpec.from_template("sma_cross", params), CANDLES, config)
    assert isinstance(script, ScriptBacktestReport)
    assert len(template.trades) > 10
    assert script.trades == template.trades
    assert script.metrics == template.metrics
    assert script.equity.tolist() == template.equity.tolist()
    assert script.drawdown.tolist() == template.drawdown.tolist()


def test_sdk_log_lines_prints_and_limit_orders_come_back() -> None:
    source = """\
def main(sdk, params):
    n = len(sdk.candles)
    if n == 5:
        sdk.buy(fraction=0.5, limit=sdk.candles.close[-1] * 1.01, tag="above")
        sdk.log("placed", n)
        print("print at", n)
    if n == 40:
        sdk.close()
"""
    config = EventConfig(ExecutionConfig(fee=0.002), maker_fee=0.0, taker_fee=0.002)
    report = run_script_backtest(source, {}, CANDLES.head(60), config, FAST)
    assert report.printed == "print at 5\n"
    assert len(report.logs) == 1 and report.logs[0].endswith(" placed 5")
    assert len(report.trades) == 1
    trade = report.trades[0]
    assert trade.exit_reason == "signal"
    # Placed at bar 4's close above the market: it rests from bar 5 and fills at its open.
    sim = report.result.trades[0]
    assert (sim.entry_index, sim.entry_price, sim.exit_index) == (5, CANDLES.open[5], 40)
    # The limit buy paid the maker fee (0) and the market sell the taker fee.
    assert trade.fee == pytest.approx(trade.size * trade.exit_price * 0.002, rel=1e-12)


def test_a_syntax_error_names_its_line() -> None:
    error = expect_error("def main(sdk, params):\n    if True\n        pass\n", "syntax")
    assert error.line == 2
    assert "line 2" in str(error)


def test_a_forbidden_import_names_its_line() -> None:
    error = expect_error("import os\n\ndef main(sdk, params):\n    pass\n", "forbidden")
    assert error.line == 1
    assert '"os"' in error.message


def test_an_exception_in_main_is_a_runtime_error_at_its_line_with_the_log() -> None:
    source = """\
def main(sdk, params):
    print("bar", len(sdk.candles))
    if len(sdk.candles) == 3:
        return 1 / 0
"""
    error = expect_error(source, "runtime")
    assert error.line == 4
    assert "ZeroDivisionError" in error.message
    assert error.log == "bar 1\nbar 2\nbar 3\n"


def test_an_infinite_loop_hits_the_cpu_limit_and_the_caller_carries_on() -> None:
    source = "def main(sdk, params):\n    x = 0\n    while True:\n        x = x + 1\n"
    error = expect_error(source, "cpu", SandboxLimits(cpu_seconds=1, wall_seconds=20))
    assert error.line in (3, 4)
    report = run_script_backtest(
        SMA_CROSS, {"fast": 5, "slow": 20}, CANDLES.head(500), ExecutionConfig()
    )
    assert report.metrics.trade_count == len(report.trades) > 0


def test_a_bad_order_from_the_sdk_is_a_runtime_error_at_the_call() -> None:
    error = expect_error("def main(sdk, params):\n    sdk.buy(size=-1)\n", "runtime")
    assert error.line == 2
    assert "sdk.buy" in error.message
