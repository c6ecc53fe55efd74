"""Script strategies in backtests: `manage.py backtest --strategy file.py` and the Celery
task for a pair whose version is a script. Both run the script in the sandbox child."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from apps.backtests.models import BacktestTask
from apps.backtests.services import BacktestInvalid, pair_execution_config
from apps.backtests.services import run as worker
from apps.backtests.tasks import backtest_task_run
from apps.engine.backtest import StrategySpec, run_backtest
from apps.engine.sandbox import SandboxLimits
from apps.market.selectors import candles_load
from apps.strategies.services import strategy_create
from tests.apps.backtests.conftest import END, START, pair_input, task_create

DATA = Path(__file__).resolve().parents[3] / "data" / "candles"
CSV = DATA / "BTC-USD_1h.csv"
SMALL_CSV = DATA / "BTC-USDT_1d.csv"

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
LOOP = "def main(sdk, params):\n    x = 0\n    while True:\n        x = x + 1\n"


def cli_json(capsys, *args: str) -> dict:
    call_command("backtest", *args, "--json")
    return json.loads(capsys.readouterr().out)


def write(tmp_path: Path, name: str, source: str) -> str:
    path = tmp_path / name
    path.write_text(source)
    return str(path)


# --- The CLI ---------------------------------------------------------------------------------


def test_a_script_sma_cross_gives_exactly_the_template_trades(tmp_path, capsys):
    script = write(tmp_path, "sma.py", SMA_CROSS)
    common = ("--params", '{"fast": 10, "slow": 30}', "--data", str(CSV), "--fee", "0.001")
    by_script = cli_json(capsys, "--strategy", script, *common)
    by_template = cli_json(capsys, "--strategy", "sma_cross", *common)
    assert len(by_template["trades"]) > 100
    assert by_script["trades"] == by_template["trades"]
    assert by_script["metrics"] == by_template["metrics"]


@pytest.mark.parametrize(
    ("source", "kind", "line"),
    [
        (LOOP, "cpu", (3, 4)),
        ("import os\n\ndef main(sdk, params):\n    pass\n", "forbidden", (1,)),
        ("def main(sdk, params):\n    if True\n        pass\n", "syntax", (2,)),
        (
            "def main(sdk, params):\n    print('hello')\n    return params['missing']\n",
            "runtime",
            (3,),
        ),
    ],
    ids=["infinite-loop", "import-os", "syntax-error", "runtime-error"],
)
def test_a_failing_script_names_kind_and_line_and_the_process_carries_on(
    tmp_path, capsys, source, kind, line
):
    bad = write(tmp_path, "bad.py", source)
    with pytest.raises(CommandError) as caught:
        call_command(
            "backtest", "--strategy", bad, "--data", str(SMALL_CSV), "--cpu-limit", "1", "--json"
        )
    message = str(caught.value)
    assert message.startswith(f"script error ({kind}) at line ")
    assert int(message.split(" at line ")[1].split(":")[0]) in line
    if kind == "runtime":
        assert "KeyError" in message
        assert "hello" in capsys.readouterr().err  # the script's prints, before it failed
    # The same process goes on to run a good script.
    good = write(tmp_path, "good.py", SMA_CROSS)
    out = cli_json(
        capsys, "--strategy", good, "--params", '{"fast": 5, "slow": 20}', "--data", str(SMALL_CSV)
    )
    assert out["metrics"]["trade_count"] == len(out["trades"]) > 0


def test_a_missing_script_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="cannot read script"):
        call_command("backtest", "--strategy", str(tmp_path / "nope.py"), "--data", str(CSV))


# --- The Celery task ---------------------------------------------------------------------------


def script_version(owner, name: str, source: str, params: dict | None = None):
    _strategy, version = strategy_create(
        owner=owner, name=name, kind="script", script=source, params=params or {}
    )
    return version


def create_task(owner, version, name: str):
    return task_create(owner, [pair_input(version), pair_input(version, "BNB/USDT")], name=name)


def run(task_id, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return backtest_task_run(task_id)


def test_a_script_version_runs_through_the_task_and_stores_its_trades(
    alice, candles, enqueued, pushes, django_capture_on_commit_callbacks
):
    version = script_version(alice, "Script SMA", SMA_CROSS, {"fast": 10, "slow": 30})
    task = create_task(alice, version, "Script")
    assert run(task.pk, django_capture_on_commit_callbacks) is True
    task.refresh_from_db()
    assert (task.status, task.progress, task.error) == ("done", 100, "")
    spec = StrategySpec.from_template("sma_cross", {"fast": 10, "slow": 30})
    for pair in task.pairs.all():
        assert pair.status == "done"
        candles = candles_load(
            exchange="binance", symbol=pair.symbol, timeframe="1h", start=START, end=END
        )
        expected = run_backtest(spec, candles, pair_execution_config(pair))
        stored = list(pair.trades.order_by("number"))
        assert len(stored) == len(expected.trades) > 5
        for row, want in zip(stored, expected.trades, strict=True):
            assert row.entry_time.isoformat().replace("+00:00", "Z") == want.entry_time
            assert row.size == pytest.approx(want.size, rel=1e-9)
            assert row.pnl == pytest.approx(want.pnl, rel=1e-9, abs=1e-6)
            assert row.exit_reason == want.exit_reason
        assert pair.result.metrics["trade_count"] == len(stored)


def test_a_breaching_script_fails_only_its_own_task_with_the_message(
    alice, candles, enqueued, pushes, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(worker, "SCRIPT_LIMITS", SandboxLimits(cpu_seconds=1, wall_seconds=20))
    looping = create_task(alice, script_version(alice, "Loop", LOOP), "Loops")
    good_version = script_version(alice, "Good", SMA_CROSS, {"fast": 10, "slow": 30})
    good = create_task(alice, good_version, "Good")

    assert run(looping.pk, django_capture_on_commit_callbacks) is True
    assert run(good.pk, django_capture_on_commit_callbacks) is True

    looping.refresh_from_db()
    good.refresh_from_db()
    assert looping.status == "failed"
    assert "script error (cpu) at line" in looping.error
    assert "BTC/USDT" in looping.error and "Loop v1" in looping.error
    assert not looping.pairs.filter(trades__isnull=False).exists()
    assert good.status == "done" and good.error == ""
    assert good.pairs.filter(trades__isnull=False).exists()


def test_the_create_form_offers_script_grid_and_dca_versions(alice, alice_client):
    strategy_create(owner=alice, name="Script cross", kind="script", script=SMA_CROSS, params={})
    strategy_create(owner=alice, name="Grid levels", kind="template", template="grid")
    strategy_create(owner=alice, name="Slices", kind="template", template="dca")

    page = alice_client.get("/backtests/new/").content.decode()

    # Options read "<strategy name> · v<number>".
    for label in ("Script cross · v1", "Grid levels · v1", "Slices · v1"):
        assert label in page


def test_a_script_version_is_refused_on_futures_and_with_limit_orders(alice, candles, enqueued):
    version = script_version(alice, "Script SMA", SMA_CROSS, {"fast": 10, "slow": 30})
    for overrides, pair_overrides, field in (
        ({"market_type": "futures"}, {}, "pairs[0].strategy_version"),
        ({}, {"order_type": "limit"}, "pairs[0].order_type"),
    ):
        with pytest.raises(BacktestInvalid) as info:
            task_create(alice, [pair_input(version, **pair_overrides)], **overrides)
        assert info.value.field == field
        assert "Script SMA v1 places its own orders" in info.value.message
    assert BacktestTask.objects.count() == 0 and enqueued == []
