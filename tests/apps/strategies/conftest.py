"""Helpers for strategy tests: trees, and the builder's form fields for a tree."""

from typing import Any

import pytest

from apps.strategies.services import strategy_create


def sma(period: Any) -> dict:
    return {"indicator": "sma", "params": {"period": period}}


def rsi_vs(op: str, level: float) -> dict:
    """RSI(14) <op> level, spelled as the builder saves it."""
    return {
        "left": {"indicator": "rsi", "params": {"period": 14}},
        "op": op,
        "right": {"value": level},
    }


def close_vs_sma(op: str, period: int) -> dict:
    return {"left": {"field": "close"}, "op": op, "right": sma(period)}


CROSS_ENTRY = {"all": [{"left": sma(10), "op": "crosses_above", "right": sma(30)}]}
CROSS_EXIT = {"all": [{"left": sma(10), "op": "crosses_below", "right": sma(30)}]}


def _operand_fields(prefix: str, operand: Any) -> dict[str, str]:
    if not isinstance(operand, dict) or "value" in operand:
        value = operand["value"] if isinstance(operand, dict) else operand
        return {f"{prefix}_kind": "value", f"{prefix}_value": str(value)}
    if "field" in operand:
        return {f"{prefix}_kind": "field", f"{prefix}_field": operand["field"]}
    fields = {f"{prefix}_kind": "indicator", f"{prefix}_indicator": operand["indicator"]}
    for name, value in operand.get("params", {}).items():
        fields[f"{prefix}_p_{name}"] = str(value)
    if "output" in operand:
        fields[f"{prefix}_output"] = operand["output"]
    if "shift" in operand:
        fields[f"{prefix}_shift"] = str(operand["shift"])
    return fields


def _text(number: Any) -> str:
    return f"${number['param']}" if isinstance(number, dict) else str(number)


def builder_fields(tree: Any, key: str) -> dict[str, str]:
    """The form fields the builder page would post for `tree` at node `key`."""
    if "weighted" in tree:
        fields = {
            f"{key}__type": "group",
            f"{key}__mode": "weighted",
            f"{key}__threshold": _text(tree["threshold"]),
        }
        for i, item in enumerate(tree["weighted"]):
            fields.update(builder_fields(item["when"], f"{key}.{i}"))
            fields[f"{key}.{i}__weight"] = _text(item["weight"])
        return fields
    if "all" in tree or "any" in tree:
        mode = "all" if "all" in tree else "any"
        fields = {f"{key}__type": "group", f"{key}__mode": mode}
        for i, child in enumerate(tree[mode]):
            fields.update(builder_fields(child, f"{key}.{i}"))
        return fields
    fields = {f"{key}__type": "cond", f"{key}__op": tree["op"]}
    fields.update(_operand_fields(f"{key}__left", tree["left"]))
    fields.update(_operand_fields(f"{key}__right", tree["right"]))
    return fields


def builder_post(entry: Any, exit_tree: Any, **extra: str) -> dict[str, str]:
    return {
        "kind": "conditions",
        **builder_fields(entry, "entry"),
        **builder_fields(exit_tree, "exit"),
        "json": "",
        "json_base": "",
        "action": "save",
        **extra,
    }


@pytest.fixture
def cross_strategy(alice):
    strategy, _version = strategy_create(
        owner=alice, name="Cross", kind="conditions", entry=CROSS_ENTRY, exit=CROSS_EXIT
    )
    return strategy
