"""`manage.py backtest`: the documented JSON contract and clear errors for bad input."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from apps.engine.candles import read_csv
from apps.engine.indicators import crosses_above, crosses_below, sma

DATA = Path(__file__).resolve().parents[3] / "data" / "candles"


def run(*args: str, capsys) -> dict:
    call_command("backtest", *args, "--json")
    return json.loads(capsys.readouterr().out)


def test_sma_cross_json_follows_the_all_in_next_open_contract(capsys):
    path = DATA / "BTC-USD_1h.csv"
    out = run(
        "--strategy",
        "sma_cross",
        "--params",
        '{"fast": 10, "slow": 30}',
        "--data",
        str(path),
        "--fee",
        "0.001",
        capsys=capsys,
    )
    candles = read_csv(path)
    fast, slow = sma(candles.close, 10), sma(candles.close, 30)
    ups, downs = (
        np.flatnonzero(crosses_above(fast, slow)),
        np.flatnonzero(crosses_below(fast, slow)),
    )
    times = pd.DatetimeIndex(candles.time)

    first = out["trades"][0]
    entry_bar = int(ups[0]) + 1
    exit_bar = int(downs[downs > ups[0]][0]) + 1
    assert first["entry_time"] == times[entry_bar].strftime("%Y-%m-%dT%H:%M:%SZ")
    assert first["exit_time"] == times[exit_bar].strftime("%Y-%m-%dT%H:%M:%SZ")
    units = 10_000 / (candles.open[entry_bar] * 1.001)
    assert first["size"] == pytest.approx(units, rel=1e-12)
    assert first["entry_price"] == candles.open[entry_bar]
    assert first["pnl"] == pytest.approx(units * candles.open[exit_bar] * 0.999 - 10_000, rel=1e-9)
    assert set(first) >= {
        "entry_time",
        "exit_time",
        "entry_price",
        "exit_price",
        "size",
        "fee",
        "pnl",
    }

    last = out["trades"][-1]
    if last["exit_time"] is None:  # all-in, so an open position is the whole equity
        assert out["metrics"]["final_equity"] == pytest.approx(
            last["size"] * candles.close[-1], rel=1e-12
        )
    assert out["metrics"]["trade_count"] == len(out["trades"])


def test_a_condition_tree_file_runs_like_the_template(tmp_path, capsys):
    tree = {
        "entry": {
            "left": {"indicator": "sma", "params": {"period": 10}},
            "op": "crosses_above",
            "right": {"indicator": "sma", "params": {"period": 30}},
        },
        "exit": {
            "left": {"indicator": "sma", "params": {"period": 10}},
            "op": "crosses_below",
            "right": {"indicator": "sma", "params": {"period": 30}},
        },
    }
    path = tmp_path / "tree.json"
    path.write_text(json.dumps(tree))
    data = str(DATA / "BTC-USDT_1d.csv")
    from_tree = run("--strategy", str(path), "--data", data, capsys=capsys)
    from_template = run("--strategy", "sma_cross", "--data", data, capsys=capsys)
    assert from_tree == from_template and len(from_tree["trades"]) > 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "sma_cross", "--params", "{fast: 3}"], "--params is not valid JSON"),
        (
            ["--strategy", "sma_cross", "--params", '{"fast": 50, "slow": 20}'],
            "fast must be shorter",
        ),
        (["--strategy", "sma_crossover"], "unknown template"),
        (["--strategy", "sma_cross", "--fee", "-0.1"], "fee"),
        (["--strategy", "sma_cross", "--sizing", "risk"], "stop_loss"),
    ],
)
def test_bad_input_gets_a_clear_message(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("backtest", *args, "--data", str(DATA / "BTC-USDT_1d.csv"))


def test_a_tree_with_a_mistake_names_its_path(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps(
            {
                "entry": {"all": [{"left": {"field": "close"}, "op": "gt", "right": 1}]},
                "exit": {"left": {"field": "close"}, "op": "<", "right": 1},
            }
        )
    )
    with pytest.raises(CommandError, match=r"entry\.all\[0\]\.op"):
        call_command("backtest", "--strategy", str(path), "--data", str(DATA / "BTC-USDT_1d.csv"))


def test_a_csv_with_a_missing_column_is_named(tmp_path):
    path = tmp_path / "candles.csv"
    path.write_text("timestamp,open,high,low,close\n2024-01-01T00:00:00Z,1,2,0.5,1.5\n")
    with pytest.raises(CommandError, match=r"missing column.*volume"):
        call_command("backtest", "--strategy", "sma_cross", "--data", str(path))
