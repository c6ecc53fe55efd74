"""The condition builder's form state: parse it, edit it, turn it into engine JSON and back.

The builder is server-rendered. Every input of a node is named `<key>__<field>`, where the
key is the node's position (`entry`, `entry.1`, `entry.1.0`: the root group, its second
child, that child's first child). An HTMX button posts the whole form plus an `action`
(`add_cond:entry.1`, `add_group:entry`, `remove:entry.1.0`, `mode_any:entry.1`), the
server applies it to the parsed tree and renders the tree again. Keys are renumbered on
every render, so they always match the order on screen.

A group's mode is ALL, ANY or a weighted vote (`mode_weighted:entry`); a vote has a
`threshold` input and each of its children a `weight` input, kept on the child.

Engine paths (`entry.all[1].left.params.period`, from apps.engine.conditions) are mapped
back to the node and the input that caused them, so each error shows next to its input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from apps.engine.conditions import OPS, PRICE_FIELDS
from apps.engine.indicators import INDICATORS

TREES = ("entry", "exit")
MODES = ("all", "any", "weighted")
DEFAULT_WEIGHT = "1"
OP_LABELS = {
    ">": "is above (>)",
    "<": "is below (<)",
    ">=": "is at or above (≥)",
    "<=": "is at or below (≤)",
    "crosses_above": "crosses above",
    "crosses_below": "crosses below",
}
OPERAND_KINDS = (("indicator", "Indicator"), ("field", "Price"), ("value", "Number"))
DEFAULT_INDICATOR = "sma"
_KEY = re.compile(r"^(entry|exit)(\.\d{1,4}){0,13}$")


@dataclass
class ParamInput:
    name: str
    kind: str
    value: str
    minimum: float
    maximum: float
    help: str
    default: float
    error: str = ""

    @property
    def step(self) -> str:
        return "1" if self.kind == "int" else "any"


@dataclass
class Operand:
    kind: str = "indicator"
    indicator: str = DEFAULT_INDICATOR
    params: list[ParamInput] = field(default_factory=list)
    output: str = ""
    shift: str = ""
    price: str = "close"
    value: str = "0"
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def outputs(self) -> tuple[str, ...]:
        spec = INDICATORS.get(self.indicator)
        return spec.outputs if spec is not None else ()

    @property
    def description(self) -> str:
        spec = INDICATORS.get(self.indicator)
        return spec.description if spec is not None else ""

    @property
    def has_errors(self) -> bool:
        return bool(self.errors) or any(p.error for p in self.params)


@dataclass
class Node:
    key: str
    is_group: bool
    mode: str = "all"
    children: list[Node] = field(default_factory=list)
    # A weighted vote's threshold, and this node's weight when its parent is a vote.
    threshold: str = DEFAULT_WEIGHT
    weight: str = DEFAULT_WEIGHT
    op: str = ">"
    left: Operand = field(default_factory=Operand)
    right: Operand = field(default_factory=Operand)
    # Problems for the node as a whole and for its operator, each with the engine path.
    errors: list[str] = field(default_factory=list)
    op_error: str = ""
    threshold_error: str = ""
    weight_error: str = ""
    engine_path: str = ""

    @property
    def dom_id(self) -> str:
        return self.key.replace(".", "-")

    @property
    def depth(self) -> int:
        return self.key.count(".")

    @property
    def tree(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def is_root(self) -> bool:
        return "." not in self.key

    def walk(self) -> list[Node]:
        nodes = [self]
        for child in self.children:
            nodes.extend(child.walk())
        return nodes


# ---------------------------------------------------------------------------------------
# Defaults and loading from engine JSON


def indicator_params(name: str, given: Mapping[str, str] | None = None) -> list[ParamInput]:
    spec = INDICATORS.get(name)
    if spec is None:
        return []
    given = given or {}
    return [
        ParamInput(
            name=p.name,
            kind=p.kind,
            value=given.get(p.name, _fmt(p.default)),
            minimum=p.min,
            maximum=p.max,
            help=p.description,
            default=p.default,
        )
        for p in spec.params
    ]


def new_operand(kind: str = "indicator", indicator: str = DEFAULT_INDICATOR) -> Operand:
    operand = Operand(kind=kind, indicator=indicator)
    operand.params = indicator_params(indicator)
    return operand


def new_condition(key: str) -> Node:
    return Node(
        key=key, is_group=False, op=">", left=new_operand(), right=new_operand(kind="field")
    )


def new_group(key: str, mode: str = "all", with_condition: bool = True) -> Node:
    group = Node(key=key, is_group=True, mode=mode)
    if with_condition:
        group.children.append(new_condition(f"{key}.0"))
    return group


def new_trees() -> dict[str, Node]:
    return {name: new_group(name) for name in TREES}


def _fmt(value: Any) -> str:
    if isinstance(value, dict) and "param" in value:
        return f"${value['param']}"
    if isinstance(value, dict) and "value" in value:
        value = value["value"]
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def load_operand(data: Any) -> Operand:
    if not isinstance(data, dict) or "value" in data or "param" in data:
        return Operand(kind="value", value=_fmt(data))
    shift = _fmt(data.get("shift", "")) if data.get("shift") else ""
    if "field" in data:
        return Operand(kind="field", price=str(data["field"]), shift=shift)
    name = str(data.get("indicator", DEFAULT_INDICATOR))
    raw = data.get("params") if isinstance(data.get("params"), dict) else {}
    operand = Operand(kind="indicator", indicator=name, shift=shift)
    operand.params = indicator_params(name, {k: _fmt(v) for k, v in raw.items()})
    outputs = operand.outputs
    operand.output = str(data.get("output", outputs[0] if outputs else ""))
    return operand


def _load_vote(data: dict[str, Any], key: str) -> Node:
    items = data["weighted"] if isinstance(data["weighted"], list) else []
    group = Node(key=key, is_group=True, mode="weighted")
    group.threshold = _fmt(data.get("threshold"))
    for i, item in enumerate(items):
        item = item if isinstance(item, dict) else {}
        child = load_node(item.get("when"), f"{key}.{i}")
        child.weight = _fmt(item.get("weight"))
        group.children.append(child)
    return group


def load_node(data: Any, key: str) -> Node:
    if isinstance(data, dict) and "weighted" in data:
        return _load_vote(data, key)
    if isinstance(data, dict) and ("all" in data or "any" in data):
        mode = "all" if "all" in data else "any"
        children = data[mode] if isinstance(data[mode], list) else []
        group = Node(key=key, is_group=True, mode=mode)
        group.children = [load_node(child, f"{key}.{i}") for i, child in enumerate(children)]
        return group
    if not isinstance(data, dict):
        return new_condition(key)
    return Node(
        key=key,
        is_group=False,
        op=str(data.get("op", ">")),
        left=load_operand(data.get("left")),
        right=load_operand(data.get("right")),
    )


def load_trees(entry: Any, exit_tree: Any) -> dict[str, Node]:
    trees = {}
    for name, data in (("entry", entry), ("exit", exit_tree)):
        node = load_node(data, name)
        if not node.is_group:
            # The builder's roots are always groups; one condition becomes ALL[condition].
            node.key = f"{name}.0"
            node = Node(key=name, is_group=True, mode="all", children=[node])
        trees[name] = node
    return trees


# ---------------------------------------------------------------------------------------
# Parsing the posted form


def _fields_by_key(data: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    by_key: dict[str, dict[str, str]] = {}
    for name in data:
        key, sep, field_name = name.partition("__")
        if sep and _KEY.match(key):
            by_key.setdefault(key, {})[field_name] = str(data.get(name, ""))
    return by_key


def _parse_operand(fields: Mapping[str, str], side: str) -> Operand:
    kind = fields.get(f"{side}_kind", "indicator")
    if kind not in dict(OPERAND_KINDS):
        kind = "indicator"
    operand = Operand(kind=kind)
    operand.shift = fields.get(f"{side}_shift", "").strip()
    if kind == "value":
        operand.value = fields.get(f"{side}_value", "0").strip()
    elif kind == "field":
        operand.price = fields.get(f"{side}_field", "close")
    else:
        name = fields.get(f"{side}_indicator", DEFAULT_INDICATOR)
        operand.indicator = name if name in INDICATORS else DEFAULT_INDICATOR
        prefix = f"{side}_p_"
        given = {k[len(prefix) :]: v.strip() for k, v in fields.items() if k.startswith(prefix)}
        if fields.get(f"{side}_shown", operand.indicator) != operand.indicator:
            # The indicator was just switched: its parameters start from their defaults.
            given = {}
        operand.params = indicator_params(operand.indicator, given)
        outputs = operand.outputs
        output = fields.get(f"{side}_output", "")
        operand.output = output if output in outputs else (outputs[0] if outputs else "")
    return operand


def _parse_node(key: str, by_key: dict[str, dict[str, str]]) -> Node:
    node = _parse_node_itself(key, by_key)
    node.weight = by_key.get(key, {}).get("weight", DEFAULT_WEIGHT).strip()
    return node


def _parse_node_itself(key: str, by_key: dict[str, dict[str, str]]) -> Node:
    fields = by_key.get(key, {})
    if fields.get("type") == "group" or "." not in key:
        mode = fields.get("mode", "all")
        group = Node(key=key, is_group=True, mode=mode if mode in MODES else "all")
        group.threshold = fields.get("threshold", DEFAULT_WEIGHT).strip()
        child_keys = [
            other
            for other in by_key
            if other.startswith(key + ".") and "." not in other[len(key) + 1 :]
        ]
        child_keys.sort(key=lambda other: int(other.rsplit(".", 1)[1]))
        group.children = [_parse_node(child, by_key) for child in child_keys]
        return group
    op = fields.get("op", ">")
    return Node(
        key=key,
        is_group=False,
        op=op,
        left=_parse_operand(fields, "left"),
        right=_parse_operand(fields, "right"),
    )


def parse_trees(data: Mapping[str, Any]) -> dict[str, Node]:
    """The builder's trees from posted form data (a QueryDict or a dict)."""
    by_key = _fields_by_key(data)
    if not any(key in by_key for key in TREES):
        return new_trees()
    return {name: _parse_node(name, by_key) for name in TREES}


# ---------------------------------------------------------------------------------------
# Actions


def _find(trees: dict[str, Node], key: str) -> tuple[Node | None, Node | None]:
    """The node with `key` and its parent group."""
    for root in trees.values():
        if root.key == key:
            return root, None
        for node in root.walk():
            for child in node.children:
                if child.key == key:
                    return child, node
    return None, None


def apply_action(trees: dict[str, Node], action: str) -> None:
    """Apply one builder action in place; unknown actions and keys are ignored."""
    verb, _, key = action.partition(":")
    node, parent = _find(trees, key)
    if node is None:
        return
    if verb == "add_cond" and node.is_group:
        node.children.append(new_condition(f"{node.key}.{len(node.children)}"))
    elif verb == "add_group" and node.is_group:
        node.children.append(new_group(f"{node.key}.{len(node.children)}", mode="any"))
    elif verb == "remove" and parent is not None:
        parent.children.remove(node)
    elif verb.removeprefix("mode_") in MODES and node.is_group:
        node.mode = verb.removeprefix("mode_")
    renumber(trees)


def renumber(trees: dict[str, Node]) -> None:
    def _renumber(node: Node, key: str) -> None:
        node.key = key
        for i, child in enumerate(node.children):
            _renumber(child, f"{key}.{i}")

    for name, root in trees.items():
        _renumber(root, name)


# ---------------------------------------------------------------------------------------
# To engine JSON


def _number(text: str) -> Any:
    text = text.strip()
    if text.startswith("$") and len(text) > 1:
        return {"param": text[1:]}
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _operand_json(operand: Operand) -> Any:
    data: dict[str, Any]
    if operand.kind == "value":
        return {"value": _number(operand.value)}
    if operand.kind == "field":
        data = {"field": operand.price}
    else:
        data = {"indicator": operand.indicator}
        data["params"] = {p.name: _number(p.value) for p in operand.params if p.value != ""}
        if len(operand.outputs) > 1:
            data["output"] = operand.output
    if operand.shift not in ("", "0"):
        data["shift"] = _number(operand.shift)
    return data


def node_json(node: Node, engine_path: str) -> Any:
    """Engine JSON for `node`; records each node's engine path for error mapping."""
    node.engine_path = engine_path
    if node.is_group and node.mode == "weighted":
        items = []
        for i, child in enumerate(node.children):
            when = node_json(child, f"{engine_path}.weighted[{i}].when")
            items.append({"weight": _number(child.weight), "when": when})
        return {"weighted": items, "threshold": _number(node.threshold)}
    if node.is_group:
        return {
            node.mode: [
                node_json(child, f"{engine_path}.{node.mode}[{i}]")
                for i, child in enumerate(node.children)
            ]
        }
    return {"left": _operand_json(node.left), "op": node.op, "right": _operand_json(node.right)}


def trees_json(trees: dict[str, Node]) -> dict[str, Any]:
    return {name: node_json(trees[name], name) for name in TREES}


# ---------------------------------------------------------------------------------------
# Errors back onto nodes


def _operand_error(operand: Operand, rest: str, message: str) -> None:
    if rest.startswith("params."):
        for param in operand.params:
            if param.name == rest.removeprefix("params."):
                param.error = message
    elif rest in ("indicator", "output", "shift", "field"):
        operand.errors[rest] = message
    elif rest == "" and operand.kind == "value":
        operand.errors["value"] = message


_VOTE_WEIGHT = re.compile(r"^weighted\[(\d+)\]\.weight$")


def _group_error(group: Node, rest: str, message: str) -> None:
    # A vote's threshold and its children's weights are inputs of the vote itself.
    weight = _VOTE_WEIGHT.match(rest)
    if rest == "threshold":
        group.threshold_error = message
    elif weight is not None and int(weight.group(1)) < len(group.children):
        group.children[int(weight.group(1))].weight_error = message


def attach_errors(trees: dict[str, Node], problems: list[tuple[str, str]]) -> list[str]:
    """Put each (engine path, message) on its node; return the ones that fit no node.

    Call after `trees_json`, which records the engine paths.
    """
    nodes = [node for root in trees.values() for node in root.walk()]
    left_over = []
    for path, message in problems:
        owner = None
        for node in nodes:
            p = node.engine_path
            matches = p and (path == p or path.startswith((p + ".", p + "[")))
            if matches and (owner is None or len(p) > len(owner.engine_path)):
                owner = node
        if owner is None:
            left_over.append(f"{path}: {message}")
            continue
        rest = path[len(owner.engine_path) :].lstrip(".")
        if owner.is_group:
            _group_error(owner, rest, message)
        else:
            side, _, tail = rest.partition(".")
            if rest == "op":
                owner.op_error = message
            elif side in ("left", "right"):
                _operand_error(getattr(owner, side), tail, message)
        # The node lists every problem with its full path (the input is marked invalid),
        # so it is clear which part of the tree the engine means.
        owner.errors.append(f"{path}: {message}")
    return left_over


def builder_context() -> dict[str, Any]:
    """Choices for the builder's selects, driven by the engine's registries."""
    return {
        "indicators": [
            {"name": spec.name, "description": spec.description, "outputs": spec.outputs}
            for spec in INDICATORS.values()
        ],
        "ops": [(op, OP_LABELS.get(op, op)) for op in OPS],
        "price_fields": PRICE_FIELDS,
        "operand_kinds": OPERAND_KINDS,
    }
