"""Readable renderings of a version's spec for the detail pages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apps.strategies.builder import OP_LABELS

TIMES = "\N{MULTIPLICATION SIGN}"
PARAM_ORDER = {"macd": ("fast", "slow", "signal")}


@dataclass
class Line:
    """One line of a tree outline: a group ("ALL of", "ANY of", "WEIGHTED VOTE ≥ 2 of")
    or a condition; a vote's children start with their weight and TIMES (2 times RSI...)."""

    text: str
    is_group: bool = False
    children: list[Line] = field(default_factory=list)


def _number(value: Any) -> str:
    if isinstance(value, dict) and "param" in value:
        return f"${value['param']}"
    if isinstance(value, dict) and "value" in value:
        value = value["value"]
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def operand_text(operand: Any) -> str:
    if not isinstance(operand, dict) or "value" in operand or "param" in operand:
        return _number(operand)
    if "field" in operand:
        text = str(operand["field"])
    else:
        params = operand.get("params") or {}
        args = ", ".join(_number(v) for v in params.values())
        text = f"{str(operand.get('indicator', '?')).upper()}({args})"
        if operand.get("output"):
            text += f".{operand['output']}"
    if operand.get("shift"):
        text += f" {operand['shift']} bars ago"
    return text


def _vote_outline(tree: dict[str, Any]) -> Line:
    items = tree["weighted"] if isinstance(tree["weighted"], list) else []
    children = []
    for item in items:
        item = item if isinstance(item, dict) else {}
        line = tree_outline(item.get("when"))
        line.text = f"{_number(item.get('weight'))} {TIMES} {line.text}"
        children.append(line)
    label = f"WEIGHTED VOTE ≥ {_number(tree.get('threshold'))} of"
    return Line(label, is_group=True, children=children)


def tree_outline(tree: Any) -> Line:
    if isinstance(tree, dict) and "weighted" in tree:
        return _vote_outline(tree)
    if isinstance(tree, dict) and ("all" in tree or "any" in tree):
        mode = "all" if "all" in tree else "any"
        children = tree[mode] if isinstance(tree[mode], list) else []
        label = "ALL of" if mode == "all" else "ANY of"
        return Line(label, is_group=True, children=[tree_outline(c) for c in children])
    if isinstance(tree, dict):
        op = OP_LABELS.get(str(tree.get("op")), str(tree.get("op")))
        left, right = operand_text(tree.get("left")), operand_text(tree.get("right"))
        return Line(f"{left} {op} {right}")
    return Line(str(tree))
