"""Condition trees: validation names the path; evaluation is exact and never looks ahead.

The weighted vote has its own tests in test_weighted.py; the look-ahead property below
covers it too."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.engine.candles import CandleArrays, read_csv
from apps.engine.conditions import ConditionError, evaluate_tree, validate_tree
from apps.engine.indicators import crosses_above, rsi, sma
from apps.engine.templates import TEMPLATES

DATA = Path(__file__).resolve().parents[2] / "data" / "candles"
CANDLES = read_csv(DATA / "BTC-USDT_1h.csv").head(3000)

SMA_FAST = {"indicator": "sma", "params": {"period": {"param": "fast"}}}
SMA_SLOW = {"indicator": "sma", "params": {"period": {"param": "slow"}}}


def problems_of(tree, params=None) -> dict[str, str]:
    with pytest.raises(ConditionError) as caught:
        validate_tree(tree, params, path="entry")
    return dict(caught.value.problems)


def test_errors_name_the_path_inside_nested_groups():
    tree = {
        "all": [
            {"left": {"field": "close"}, "op": ">", "right": 1},
            {
                "any": [
                    {"left": {"indicator": "sma", "params": {"period": 0}}, "op": ">", "right": 1}
                ]
            },
        ]
    }
    problems = problems_of(tree)
    assert list(problems) == ["entry.all[1].any[0].left.params.period"]
    assert "period" in problems["entry.all[1].any[0].left.params.period"]


@pytest.mark.parametrize(
    ("tree", "path", "words"),
    [
        ({"left": {"field": "close"}, "op": "=>", "right": 1}, "entry.op", "unknown operator"),
        ({"left": {"field": "price"}, "op": ">", "right": 1}, "entry.left.field", "unknown field"),
        (
            {"left": {"indicator": "smaa"}, "op": ">", "right": 1},
            "entry.left.indicator",
            "unknown indicator",
        ),
        (
            {"left": {"indicator": "sma", "params": {"lenght": 5}}, "op": ">", "right": 1},
            "entry.left.params.lenght",
            "unknown parameter 'lenght'",
        ),
        (
            {"left": {"indicator": "macd", "output": "line"}, "op": ">", "right": 0},
            "entry.left.output",
            "outputs",
        ),
        ({"all": []}, "entry.all", "non-empty"),
        (
            {"left": {"field": "close"}, "op": ">", "right": {"param": "level"}},
            "entry.right",
            "not set",
        ),
        (
            {"left": {"field": "close", "shift": -1}, "op": ">", "right": 1},
            "entry.left.shift",
            "0 to",
        ),
        ("close > 3", "entry", "must be an object"),
    ],
)
def test_each_kind_of_mistake_is_reported_at_its_path(tree, path, words):
    problems = problems_of(tree)
    assert path in problems
    assert words in problems[path]


def test_every_problem_is_reported_not_only_the_first():
    tree = {"any": [{"left": {"field": "x"}, "op": "?", "right": True}]}
    assert set(problems_of(tree)) == {
        "entry.any[0].left.field",
        "entry.any[0].op",
        "entry.any[0].right",
    }


def test_a_cross_leaf_equals_the_indicator_cross_functions():
    tree = {"left": SMA_FAST, "op": "crosses_above", "right": SMA_SLOW}
    result = evaluate_tree(tree, CANDLES, {"fast": 10, "slow": 30})
    expected = crosses_above(sma(CANDLES.close, 10), sma(CANDLES.close, 30))
    assert np.array_equal(result, expected) and result.sum() > 20


def test_all_and_any_combine_like_logical_and_or():
    low_rsi = {"left": {"indicator": "rsi", "params": {"period": 14}}, "op": "<", "right": 35}
    above_sma = {"left": {"field": "close"}, "op": ">", "right": SMA_SLOW}
    params = {"slow": 50}
    r = rsi(CANDLES.close, 14)
    s = sma(CANDLES.close, 50)
    a = (r < 35) & ~np.isnan(r)
    b = (CANDLES.close > s) & ~np.isnan(s)
    assert np.array_equal(evaluate_tree({"all": [low_rsi, above_sma]}, CANDLES, params), a & b)
    assert np.array_equal(evaluate_tree({"any": [low_rsi, above_sma]}, CANDLES, params), a | b)


def test_shift_reads_earlier_bars_only():
    tree = {"left": {"field": "close"}, "op": ">", "right": {"field": "high", "shift": 1}}
    result = evaluate_tree(tree, CANDLES)
    assert not result[0]
    assert np.array_equal(result[1:], CANDLES.close[1:] > CANDLES.high[:-1])


def test_warmup_bars_are_never_true():
    tree = {"left": SMA_FAST, "op": "<", "right": 1e12}
    result = evaluate_tree(tree, CANDLES, {"fast": 50})
    assert not result[:49].any() and result[49:].all()


def _perturbed(candles: CandleArrays, after: int, seed: int) -> CandleArrays:
    rng = np.random.default_rng(seed)
    scale = np.ones(len(candles))
    scale[after + 1 :] = rng.uniform(0.5, 1.5, len(candles) - after - 1)
    return CandleArrays(
        candles.time,
        candles.open * scale,
        candles.high * scale,
        candles.low * scale,
        candles.close * scale,
        candles.volume * scale,
    )


# A weighted vote over look-back signals of every kind: a cross, a shift, a veto.
WEIGHTED_VOTE = {
    "weighted": [
        {"weight": 2, "when": {"left": SMA_FAST, "op": "crosses_above", "right": SMA_SLOW}},
        {
            "weight": {"param": "w_rsi"},
            "when": {
                "left": {"indicator": "rsi", "params": {"period": 14}},
                "op": "<",
                "right": 45,
            },
        },
        {
            "weight": -1,
            "when": {"left": {"field": "close"}, "op": "<", "right": {"field": "low", "shift": 3}},
        },
    ],
    "threshold": {"param": "threshold"},
}
TREES = {
    **{
        name: (t.entry, t.exit, t.resolve_params({}))
        for name, t in TEMPLATES.items()
        if t.kind == "conditions"
    },
    "weighted vote": (
        WEIGHTED_VOTE,
        {"any": [WEIGHTED_VOTE, {"left": SMA_FAST, "op": "crosses_below", "right": SMA_SLOW}]},
        {"fast": 10, "slow": 30, "w_rsi": 1.5, "threshold": 1.5},
    ),
}


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(sorted(TREES)),
    cut=st.integers(min_value=60, max_value=len(CANDLES) - 2),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_changing_candles_after_bar_t_changes_no_decision_up_to_t(name, cut, seed):
    entry, exit_, params = TREES[name]
    changed = _perturbed(CANDLES, cut, seed)
    for tree in (entry, exit_):
        before = evaluate_tree(tree, CANDLES, params)
        after = evaluate_tree(tree, changed, params)
        assert np.array_equal(before[: cut + 1], after[: cut + 1])
