"""The three editors (template, condition builder, script) behind the create and edit pages.

Each editor reads the posted form (or the latest version, or defaults), offers the input
for the services as `spec()`, and takes the services' (path, message) problems back so the
page can show each next to its input. Editors never write; the views call the services.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from apps.engine.templates import TEMPLATES
from apps.strategies import builder
from apps.strategies.models import StrategyKind, StrategyVersion
from apps.strategies.specs import EXAMPLE_SCRIPT, EXAMPLE_SCRIPT_PARAMS, StrategyInvalid

SAVE = "save"


def _as_number(text: str) -> Any:
    text = text.strip()
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            continue
    return text


def _json_params(text: str) -> tuple[dict[str, Any] | None, str]:
    """Parsed params and an error message (empty when fine)."""
    if not text.strip():
        return {}, ""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
    if not isinstance(value, dict):
        return None, 'must be a JSON object such as {"fast": 10}'
    return value, ""


def _tree_of(path: str) -> str:
    return path.split(".")[0].split("[")[0]


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


class Editor:
    kind: str = ""

    def __init__(
        self,
        data: Mapping[str, Any] | None,
        query: Mapping[str, Any],
        latest: StrategyVersion | None,
    ) -> None:
        self.data = data
        self.query = query
        self.latest = latest
        self.action = str(data.get("action", SAVE)) if data is not None else ""
        self.errors: list[str] = []

    @property
    def saving(self) -> bool:
        return self.data is not None and self.action == SAVE

    def spec(self) -> dict[str, Any] | None:
        raise NotImplementedError

    def add_problems(self, problems: list[tuple[str, str]]) -> None:
        raise NotImplementedError

    def context(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass
class TemplateParam:
    name: str
    type: str
    value: str
    minimum: float
    maximum: float
    default: float
    help: str
    error: str = ""

    @property
    def step(self) -> str:
        return "1" if self.type == "int" else "any"


class TemplateEditor(Editor):
    kind = StrategyKind.TEMPLATE

    def __init__(self, data, query, latest) -> None:
        super().__init__(data, query, latest)
        source = data if data is not None else query
        name = str(source.get("template", "")) or (latest.template if latest else "")
        self.template = TEMPLATES.get(name)
        self.template_error = ""
        given: dict[str, str] = {}
        if data is not None:
            given = {k[len("param_") :]: str(v) for k, v in data.items() if k.startswith("param_")}
        elif latest is not None and self.template is not None and latest.template == name:
            given = {k: builder._fmt(v) for k, v in latest.params.items()}
        self.params = [
            TemplateParam(
                name=p.name,
                type=p.type,
                value=given.get(p.name, builder._fmt(p.default)),
                minimum=p.minimum,
                maximum=p.maximum,
                default=p.default,
                help=p.help,
            )
            for p in (self.template.params if self.template else ())
        ]

    def spec(self) -> dict[str, Any] | None:
        params = {p.name: _as_number(p.value) for p in self.params if p.value.strip() != ""}
        return {"template": self.template.name if self.template else "", "params": params}

    def add_problems(self, problems: list[tuple[str, str]]) -> None:
        by_name = {p.name: p for p in self.params}
        for path, message in problems:
            name = path.removeprefix("params.")
            if path.startswith("params.") and name in by_name:
                by_name[name].error = message
            elif path == "template":
                self.template_error = message
            else:
                self.errors.append(f"{path}: {message}" if path else message)

    def context(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "templates": list(TEMPLATES.values()),
            "template_params": self.params,
            "template_error": self.template_error,
        }


class ScriptEditor(Editor):
    kind = StrategyKind.SCRIPT

    def __init__(self, data, query, latest) -> None:
        super().__init__(data, query, latest)
        if data is not None:
            self.source = str(data.get("script", ""))
            self.params_text = str(data.get("params", ""))
        elif latest is not None:
            self.source, self.params_text = latest.script, _pretty(latest.params)
        else:
            self.source, self.params_text = EXAMPLE_SCRIPT, _pretty(EXAMPLE_SCRIPT_PARAMS)
        self.script_error = ""
        self.params_error = ""

    def spec(self) -> dict[str, Any] | None:
        params, error = _json_params(self.params_text)
        if params is None:
            self.params_error = error
            return None
        return {"script": self.source, "params": params}

    def add_problems(self, problems: list[tuple[str, str]]) -> None:
        for path, message in problems:
            if path == "script":
                self.script_error = message
            elif path.startswith("params"):
                self.params_error = f"{path}: {message}"
            else:
                self.errors.append(f"{path}: {message}" if path else message)

    def context(self) -> dict[str, Any]:
        return {
            "script": self.source,
            "script_params": self.params_text,
            "script_error": self.script_error,
            "params_error": self.params_error,
        }


class ConditionsEditor(Editor):
    """The condition builder, plus the "Advanced: JSON" textarea.

    The JSON textarea wins when its text differs from the JSON the page rendered
    (`json_base`): the person edited it. Otherwise the builder's inputs are the truth.
    """

    kind = StrategyKind.CONDITIONS

    def __init__(self, data, query, latest) -> None:
        super().__init__(data, query, latest)
        self.json_errors: list[str] = []
        self.json_open = False
        self.params: dict[str, Any] = {}
        self.json_text = ""
        if data is None:
            if latest is not None:
                self.trees = builder.load_trees(latest.entry, latest.exit)
                self.params = dict(latest.params)
            else:
                self.trees = builder.new_trees()
            self._refresh_json()
            return
        self.trees = builder.parse_trees(data)
        params, error = _json_params(str(data.get("params_json", "")))
        self.params = params or {}
        if error:
            self.errors.append(f"params: {error}")
        posted = str(data.get("json", "")).replace("\r\n", "\n").strip()
        base = str(data.get("json_base", "")).replace("\r\n", "\n").strip()
        self.document: dict[str, Any] | None = None
        if self.action == "apply_json" or (self.action == SAVE and posted and posted != base):
            self._take_json(posted)
        elif self.action not in ("", SAVE):
            builder.apply_action(self.trees, self.action)
        if self.document is None and not self.json_errors:
            self._refresh_json()

    def _take_json(self, text: str) -> None:
        self.json_text, self.json_open = text, True
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            self.json_errors.append(
                f"Not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
            )
            return
        if not isinstance(document, dict) or not {"entry", "exit"} <= document.keys():
            self.json_errors.append('The JSON must be an object with "entry" and "exit" trees.')
            return
        params = document.get("params", {})
        self.document = {"entry": document["entry"], "exit": document["exit"], "params": params}
        if self.action == "apply_json":
            self._apply_document()

    def _apply_document(self) -> None:
        from apps.strategies.specs import build_content

        document = self.document or {}
        try:
            build_content(kind=self.kind, **document)
        except StrategyInvalid as exc:
            self.json_errors.extend(f"{p}: {m}" if p else m for p, m in exc.problems)
            return
        self.trees = builder.load_trees(document["entry"], document["exit"])
        self.params = dict(document["params"])
        self.document = None
        self._refresh_json()
        self.json_open = False

    def _refresh_json(self) -> None:
        document = builder.trees_json(self.trees)
        if self.params:
            document["params"] = self.params
        self.json_text = _pretty(document)

    def spec(self) -> dict[str, Any] | None:
        if self.json_errors:
            return None
        if self.document is not None:
            return dict(self.document)
        document = builder.trees_json(self.trees)
        latest = self.latest
        if latest is not None and latest.entry is not None:
            # The builder spells some trees differently (a bare number becomes {"value": n},
            # defaults are written out, the root is always a group). When the person changed
            # nothing, keep the latest version's own spelling so it counts as "no changes".
            as_loaded = builder.trees_json(builder.load_trees(latest.entry, latest.exit))
            if as_loaded == document:
                document = {"entry": latest.entry, "exit": latest.exit}
        return {"entry": document["entry"], "exit": document["exit"], "params": self.params}

    def add_problems(self, problems: list[tuple[str, str]]) -> None:
        if self.document is not None:
            # The JSON was the input: show the problems under it, with their paths.
            self.json_errors.extend(f"{p}: {m}" if p else m for p, m in problems)
            self.json_open = True
            return
        tree_problems = [
            (p, m) for p, m in problems if p.split(".")[0].split("[")[0] in builder.TREES
        ]
        other = [(p, m) for p, m in problems if (p, m) not in tree_problems]
        builder.trees_json(self.trees)  # records each node's engine path
        left_over = builder.attach_errors(self.trees, tree_problems)
        self.errors.extend(left_over)
        self.errors.extend(f"{p}: {m}" if p else m for p, m in other)

    def context(self) -> dict[str, Any]:
        return {
            "trees": [self.trees[name] for name in builder.TREES],
            "json_text": self.json_text,
            "json_base": self.json_text if not self.json_errors else "",
            "json_errors": self.json_errors,
            "tree_problem_count": sum(
                len(node.errors) for root in self.trees.values() for node in root.walk()
            ),
            "json_open": self.json_open or bool(self.json_errors),
            "params_json": json.dumps(self.params) if self.params else "",
            **builder.builder_context(),
        }


EDITORS: dict[str, type[Editor]] = {
    StrategyKind.TEMPLATE: TemplateEditor,
    StrategyKind.CONDITIONS: ConditionsEditor,
    StrategyKind.SCRIPT: ScriptEditor,
}
