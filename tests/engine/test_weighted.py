"""The weighted vote: true when the weights of the true children reach the threshold."""

import numpy as np
import pytest

from apps.engine.candles import CandleArrays
from apps.engine.conditions import MAX_DEPTH, ConditionError, evaluate_tree, validate_tree

# Eight bars that spell every combination of three signals: A reads close, B open, C volume.
A = [0, 1, 0, 1, 0, 1, 0, 1]
B = [0, 0, 1, 1, 0, 0, 1, 1]
C = [0, 0, 0, 0, 1, 1, 1, 1]
TABLE = CandleArrays(
    np.arange(8).astype("datetime64[h]"),
    np.array(B, float),
    np.ones(8),
    np.zeros(8),
    np.array(A, float),
    np.array(C, float),
)


def signal(field: str) -> dict:
    return {"left": {"field": field}, "op": ">", "right": 0.5}


SIG_A, SIG_B, SIG_C = signal("close"), signal("open"), signal("volume")


def vote(threshold, *weighted) -> dict:
    return {
        "weighted": [{"weight": weight, "when": when} for weight, when in weighted],
        "threshold": threshold,
    }


def truth(tree, params=None) -> list[int]:
    return evaluate_tree(tree, TABLE, params).astype(int).tolist()


def problems_of(tree, params=None) -> dict[str, str]:
    with pytest.raises(ConditionError) as caught:
        validate_tree(tree, params, path="entry")
    return dict(caught.value.problems)


def test_the_truth_table_of_2a_plus_b_minus_c_at_least_2():
    # bar:            0  1  2  3   4  5  6  7
    # 2A + B - C:     0  2  1  3  -1  1  0  2
    assert truth(vote(2, (2, SIG_A), (1, SIG_B), (-1, SIG_C))) == [0, 1, 0, 1, 0, 0, 0, 1]


def test_a_sum_equal_to_the_threshold_passes_and_one_just_below_does_not():
    assert truth(vote(2, (1, SIG_A), (1, SIG_B))) == [0, 0, 0, 1, 0, 0, 0, 1]
    assert truth(vote(1.5, (1.5, SIG_A), (0.5, SIG_B))) == [0, 1, 0, 1, 0, 1, 0, 1]
    assert truth(vote(1.5000001, (1.5, SIG_A), (0.5, SIG_B))) == [0, 0, 0, 1, 0, 0, 0, 1]


def test_weights_that_add_up_in_decimal_pass_despite_binary_rounding():
    assert 0.7 + 0.1 < 0.8
    assert truth(vote(0.8, (0.7, SIG_A), (0.1, SIG_B))) == [0, 0, 0, 1, 0, 0, 0, 1]


def test_a_negative_weight_vetoes():
    # A alone passes; C (weight -2) takes it back below the threshold.
    assert truth(vote(1, (1, SIG_A), (1, SIG_B), (-2, SIG_C))) == [0, 1, 1, 1, 0, 0, 0, 0]


def test_weights_and_threshold_may_be_parameters():
    tree = vote({"param": "t"}, ({"param": "wa"}, SIG_A), ({"value": 1}, SIG_B))
    assert truth(tree, {"wa": 2, "t": 2}) == [0, 1, 0, 1, 0, 1, 0, 1]
    assert truth(tree, {"wa": 1, "t": 2}) == [0, 0, 0, 1, 0, 0, 0, 1]
    assert truth(tree, {"wa": 1, "t": 1}) == [0, 1, 1, 1, 0, 1, 1, 1]


def test_it_nests_inside_any_and_holds_groups_itself():
    inner = vote(2, (1, {"all": [SIG_A, SIG_B]}), (1, {"any": [SIG_C]}))
    assert truth(inner) == [0, 0, 0, 0, 0, 0, 0, 1]
    outer = {"any": [inner, {"all": [SIG_A, {"left": {"field": "open"}, "op": "<", "right": 0.5}]}]}
    assert truth(outer) == [0, 1, 0, 0, 0, 1, 0, 1]
    assert truth({"all": [vote(1, (1, outer), (1, SIG_C)), SIG_B]}) == [0, 0, 0, 0, 0, 0, 1, 1]


def test_a_vote_over_warmup_counts_the_warming_signal_as_false():
    warming = {"left": {"indicator": "sma", "params": {"period": 4}}, "op": ">", "right": -1}
    assert truth(vote(1, (1, warming))) == [0, 0, 0, 1, 1, 1, 1, 1]


@pytest.mark.parametrize(
    ("tree", "path", "words"),
    [
        (vote(1, (1, SIG_A), ("2", SIG_B)), "entry.weighted[1].weight", "finite number"),
        (vote(1, (1, SIG_A), (float("nan"), SIG_B)), "entry.weighted[1].weight", "finite"),
        (vote(1, (True, SIG_A)), "entry.weighted[0].weight", "finite number"),
        (vote(1, ({"param": "w"}, SIG_A)), "entry.weighted[0].weight", "'w', which is not set"),
        (vote(float("inf"), (1, SIG_A)), "entry.threshold", "finite number"),
        (vote({"param": "t"}, (1, SIG_A)), "entry.threshold", "'t', which is not set"),
        ({"weighted": [{"weight": 1, "when": SIG_A}]}, "entry.threshold", "required"),
        ({"weighted": [], "threshold": 1}, "entry.weighted", "non-empty list"),
        ({"weighted": {"weight": 1}, "threshold": 1}, "entry.weighted", "non-empty list"),
        ({"weighted": [SIG_A], "threshold": 1}, "entry.weighted[0]", "unknown key"),
        ({"weighted": [3], "threshold": 1}, "entry.weighted[0]", "'weight' and 'when'"),
        ({"weighted": [{"when": SIG_A}], "threshold": 1}, "entry.weighted[0].weight", "required"),
        ({"weighted": [{"weight": 1}], "threshold": 1}, "entry.weighted[0].when", "required"),
        (vote(1, (1, SIG_A), (1, {"all": []})), "entry.weighted[1].when.all", "non-empty"),
        (vote(3, (1, SIG_A), (1, SIG_B), (-1, SIG_C)), "entry.threshold", "never be reached"),
        (vote(0, (1, SIG_A), (1, SIG_B)), "entry.threshold", "no vote in favour"),
        (vote(-1, (1, SIG_A), (-1, SIG_C)), "entry.threshold", "above -1"),
        ({"weighted": [], "threshold": 1, "all": []}, "entry", "one key"),
        ({"weighted": [], "threshold": 1, "extra": 1}, "entry", "one key"),
    ],
)
def test_each_mistake_is_reported_at_its_exact_path(tree, path, words):
    problems = problems_of(tree)
    assert path in problems, problems
    assert words in problems[path]


def test_every_problem_in_a_nested_vote_is_reported_at_once():
    bad_leaf = {"left": {"field": "price"}, "op": ">", "right": 1}
    tree = {"any": [SIG_A, vote({"param": "t"}, (1, bad_leaf), ("x", SIG_B))]}
    assert problems_of(tree) == {
        "entry.any[1].threshold": "refers to parameter 't', which is not set",
        "entry.any[1].weighted[0].when.left.field": (
            "unknown field 'price'; use one of open, high, low, close, volume"
        ),
        "entry.any[1].weighted[1].weight": "must be a finite number",
    }


def test_an_unreachable_threshold_says_what_the_weights_add_up_to():
    problems = problems_of(vote({"param": "t"}, (2, SIG_A), (-5, SIG_B)), {"t": 2.5})
    assert problems == {
        "entry.threshold": "2.5 can never be reached: the positive weights add up to 2"
    }


def test_nesting_votes_deeper_than_the_limit_is_refused():
    tree = SIG_A
    for _ in range(MAX_DEPTH):
        tree = vote(1, (1, tree))
    validate_tree(tree)
    problems = problems_of(vote(1, (1, tree)))
    assert len(problems) == 1
    [(path, message)] = problems.items()
    assert path == "entry" + ".weighted[0].when" * (MAX_DEPTH + 1)
    assert "deeper than" in message
