"""Turn what a person typed into a version's content, validated by the engine.

Every problem is a (path, message) pair: `name`, `template`, `params.fast`,
`entry.all[1].left.params.period`, `script` (with the line in the message). Forms and the
API put each message next to the input its path names.
"""

from __future__ import annotations

import ast
from typing import Any

from apps.common.errors import ApplicationError
from apps.engine.backtest import StrategySpec, StrategySpecError
from apps.engine.conditions import ConditionError
from apps.engine.templates import TEMPLATES, TemplateError
from apps.strategies.models import StrategyKind, spec_content

EXAMPLE_SCRIPT = '''\
def main(sdk, params):
    """Runs on every closed candle. Buys when the fast SMA crosses above the slow one."""
    fast, slow = sdk.sma(params["fast"]), sdk.sma(params["slow"])
    if len(sdk.candles) < 2:
        return
    if sdk.position.size == 0 and fast[-2] < slow[-2] and fast[-1] > slow[-1]:
        sdk.buy()  # sized by the backtest or bot settings (all-in by default)
    elif sdk.position.size > 0 and fast[-2] > slow[-2] and fast[-1] < slow[-1]:
        sdk.close()
        sdk.log("closed at", sdk.candles.close[-1])
'''
EXAMPLE_SCRIPT_PARAMS = {"fast": 10, "slow": 30}
MAX_SCRIPT_CHARS = 100_000
RECORDED_READ_ONLY = (
    "recorded alerts are read-only: their versions are snapshots of a signal bot's "
    "accepted alerts, taken by “Backtest these alerts” on the signal bot's page"
)


class StrategyInvalid(ApplicationError):
    """Input the engine refuses; `problems` lists (path, message), the first is `field`."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        path, message = problems[0]
        super().__init__(
            "; ".join(f"{p}: {m}" if p else m for p, m in problems), field=path or None
        )
        self.first_message = message


def build_content(
    *,
    kind: str,
    template: str = "",
    params: Any = None,
    entry: Any = None,
    exit: Any = None,
    script: str = "",
) -> dict[str, Any]:
    """Validate one version's input for `kind` and return its canonical content."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise StrategyInvalid([("params", "must be an object of name: number")])
    if kind == StrategyKind.TEMPLATE:
        return _template_content(template, params)
    if kind == StrategyKind.CONDITIONS:
        return _conditions_content(params, entry, exit)
    if kind == StrategyKind.SCRIPT:
        return _script_content(params, script)
    if kind == StrategyKind.RECORDED:
        raise StrategyInvalid([("kind", RECORDED_READ_ONLY)])
    raise StrategyInvalid([("kind", f"unknown kind {kind!r}; use one of {StrategyKind.values}")])


def _template_content(name: str, params: dict[str, Any]) -> dict[str, Any]:
    template = TEMPLATES.get(name)
    if template is None:
        known = ", ".join(sorted(TEMPLATES))
        raise StrategyInvalid([("template", f"choose a template: one of {known}")])
    try:
        resolved = template.resolve_params(params)
    except TemplateError as exc:
        raise StrategyInvalid([(_param_path(exc.field), str(exc))]) from exc
    entry = exit_ = None
    if template.kind == "conditions":
        try:
            spec = StrategySpec.from_template(name, resolved)
            spec.validate()
        except StrategySpecError as exc:
            raise StrategyInvalid([(_param_path(exc.field), str(exc))]) from exc
        except ConditionError as exc:
            raise StrategyInvalid(exc.problems) from exc
        entry, exit_ = spec.entry, spec.exit
    return spec_content(
        kind=StrategyKind.TEMPLATE,
        template=name,
        params=resolved,
        entry=entry,
        exit=exit_,
        script="",
    )


def _param_path(field: str | None) -> str:
    if field in (None, "strategy"):
        return "template"
    return f"params.{field}"


def _conditions_content(params: dict[str, Any], entry: Any, exit_: Any) -> dict[str, Any]:
    problems = [
        (f"params.{key}", "must be a number")
        for key, value in params.items()
        if isinstance(value, bool) or not isinstance(value, (int, float))
    ]
    try:
        StrategySpec.from_tree({"entry": entry, "exit": exit_}, params)
    except ConditionError as exc:
        problems.extend(exc.problems)
    except StrategySpecError as exc:
        problems.append((exc.field or "entry", str(exc)))
    if problems:
        raise StrategyInvalid(problems)
    return spec_content(
        kind=StrategyKind.CONDITIONS, template="", params=params, entry=entry, exit=exit_, script=""
    )


def _script_content(params: dict[str, Any], source: str) -> dict[str, Any]:
    source = source.replace("\r\n", "\n")
    if not source.strip():
        raise StrategyInvalid([("script", "write a script that defines main(sdk, params)")])
    if len(source) > MAX_SCRIPT_CHARS:
        raise StrategyInvalid([("script", f"scripts are limited to {MAX_SCRIPT_CHARS} characters")])
    check_script(source)
    return spec_content(
        kind=StrategyKind.SCRIPT, template="", params=params, entry=None, exit=None, script=source
    )


def check_script(source: str) -> None:
    """Refuse a script that does not compile or has no main(sdk, params).

    The sandbox's RestrictedPython compiler is used when it is available (syntax errors and
    forbidden imports/names, each with its line); Python's own compile() is the fallback,
    which catches syntax errors only.
    """
    sandbox_compile = _sandbox_compiler()
    if sandbox_compile is not None:
        sandbox_compile(source)
    try:
        tree = ast.parse(source, filename="strategy.py")
        compile(tree, "strategy.py", "exec")
    except SyntaxError as exc:
        where = f"line {exc.lineno}: " if exc.lineno else ""
        raise StrategyInvalid([("script", f"{where}{exc.msg}")]) from exc
    mains = [
        node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "main"
    ]
    if not mains:
        raise StrategyInvalid([("script", "the script must define main(sdk, params)")])
    if len(mains[0].args.args) != 2:
        raise StrategyInvalid(
            [("script", f"line {mains[0].lineno}: main must take two arguments: (sdk, params)")]
        )


def _sandbox_compiler() -> Any:
    # The sandbox is a separate piece of the engine; without it, compile() still checks syntax.
    try:
        from apps.engine.sandbox import SandboxError, compile_strategy
    except ImportError:
        return None

    def _compile(source: str) -> None:
        try:
            compile_strategy(source)
        except SandboxError as exc:
            where = f"line {exc.line}: " if exc.line is not None else ""
            raise StrategyInvalid([("script", f"{where}{exc.message}")]) from exc

    return _compile
