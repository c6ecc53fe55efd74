"""Compile script strategies with RestrictedPython; load `main` inside the sandbox child.

`compile_strategy` only parses and transforms: it never runs the script, so the web app
and the worker may call it to validate a script at save time (errors carry line numbers).
`load_main` executes the module body and returns `main`; it is meant to run only inside the
limited child process (`apps.engine.sandbox.child`), never in a trusted process.
"""

from __future__ import annotations

import ast
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from RestrictedPython.transformer import RestrictingNodeTransformer

from apps.engine.sandbox.errors import SandboxError
from apps.engine.sandbox.imports import ALLOWED_MODULES, import_refusal
from apps.engine.sandbox.policy import FORBIDDEN_NAMES, script_globals
from apps.engine.sandbox.script_log import ScriptLog

MAX_SOURCE_CHARS = 200_000
_ATTR_BUILTINS = ("getattr", "hasattr", "setattr", "delattr")


class StrategyPolicy(RestrictingNodeTransformer):
    """RestrictedPython's policy plus the import allowlist and refused builtins.

    Errors are also kept as (line, message) pairs so callers get the line as a number.
    """

    def __init__(
        self,
        errors: list[str] | None = None,
        warnings: list[str] | None = None,
        used_names: dict[str, bool] | None = None,
    ) -> None:
        super().__init__(errors, warnings, used_names)
        self.found: list[tuple[int | None, str]] = []

    def error(self, node: ast.AST, info: str) -> None:
        lineno = getattr(node, "lineno", None)
        self.found.append((lineno, info))
        super().error(node, info)

    def visit_Import(self, node: ast.Import) -> Any:
        for alias in node.names:
            reason = import_refusal(alias.name)
            if reason is not None:
                self.error(node, reason)
        return super().visit_Import(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> Any:
        module = node.module or ""
        if node.level:
            self.error(node, "relative imports are not allowed in strategies")
        else:
            reason = import_refusal(module)
            if reason is not None:
                self.error(node, reason)
            else:
                exported = set(ALLOWED_MODULES[module].public_names())
                for alias in node.names:
                    if alias.name != "*" and alias.name not in exported:
                        self.error(
                            node,
                            f'"{alias.name}" cannot be imported from "{module}" in strategies',
                        )
        return super().visit_ImportFrom(node)

    def visit_Name(self, node: ast.Name) -> Any:
        reason = FORBIDDEN_NAMES.get(node.id)
        if reason is not None:
            self.error(node, f'"{node.id}" is not available in strategies ({reason})')
        return super().visit_Name(node)

    def visit_Call(self, node: ast.Call) -> Any:
        func = node.func
        # getattr(x, "__class__") and friends: refuse literal private names up front.
        if isinstance(func, ast.Name) and func.id in _ATTR_BUILTINS and len(node.args) >= 2:
            name = node.args[1]
            if (
                isinstance(name, ast.Constant)
                and isinstance(name.value, str)
                and name.value.startswith("_")
            ):
                self.error(
                    node,
                    f'{func.id}() with the private or internal name "{name.value}" '
                    "is not allowed in strategies",
                )
        # "...".format(...): format strings reach attributes ("{0.__class__}").
        if (
            isinstance(func, ast.Attribute)
            and func.attr in ("format", "format_map")
            and isinstance(func.value, ast.Constant)
            and isinstance(func.value.value, str)
        ):
            self.error(
                node,
                "str.format is not available in strategies (it reaches attributes); use f-strings",
            )
        return super().visit_Call(node)


@dataclass(frozen=True)
class CompiledStrategy:
    """A script that compiled under the policy. `code` runs only in the sandbox child."""

    source: str
    filename: str
    code: types.CodeType = field(repr=False, compare=False)
    warnings: tuple[str, ...] = ()


def _syntax_error(exc: SyntaxError) -> SandboxError:
    text = (exc.text or "").strip()
    message = exc.msg + (f": {text}" if text else "")
    return SandboxError("syntax", message, exc.lineno)


def _find_main(tree: ast.Module) -> tuple[int | None, str] | None:
    """None when the module defines a usable top-level `def main(sdk, params)`."""
    mains = [
        n
        for n in tree.body
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == "main"
    ]
    if not mains:
        return (
            None
            if _assigns_main(tree)
            else (
                None,
                "the script must define a function `def main(sdk, params):`",
            )
        )
    node = mains[-1]
    args = node.args
    positional = len(args.posonlyargs) + len(args.args)
    required_kwonly = [
        a for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is None
    ]
    if (positional < 2 and args.vararg is None) or required_kwonly:
        return (node.lineno, "main must take two arguments: `def main(sdk, params):`")
    if positional - len(args.defaults) > 2:
        return (node.lineno, "main must take two arguments: `def main(sdk, params):`")
    return None


def _assigns_main(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, ast.Assign):
            if any(isinstance(t, ast.Name) and t.id == "main" for t in node.targets):
                return True
        elif isinstance(node, ast.ClassDef) and node.name == "main":
            return True
    return False


def compile_strategy(source: str, filename: str = "strategy.py") -> CompiledStrategy:
    """Parse and transform `source`; raise `SandboxError` ("syntax"/"forbidden") with a line.

    Never executes the script.
    """
    if not isinstance(source, str):
        raise SandboxError("syntax", "the script must be text")
    if len(source) > MAX_SOURCE_CHARS:
        raise SandboxError(
            "forbidden", f"the script is too long ({len(source)} > {MAX_SOURCE_CHARS} characters)"
        )
    if "\x00" in source:
        raise SandboxError("syntax", "the script contains a NUL character")
    try:
        tree = ast.parse(source, filename, "exec")
    except SyntaxError as exc:
        raise _syntax_error(exc) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise SandboxError("syntax", f"the script cannot be parsed: {exc}") from None

    missing_main = _find_main(tree)

    errors: list[str] = []
    warnings: list[str] = []
    policy = StrategyPolicy(errors, warnings, {})
    try:
        policy.visit(tree)
    except RecursionError:
        raise SandboxError("syntax", "the script is nested too deeply") from None
    if policy.found:
        ordered = sorted(policy.found, key=lambda item: (item[0] is None, item[0] or 0))
        line, message = ordered[0]
        details = tuple(f"line {ln}: {msg}" if ln is not None else msg for ln, msg in ordered)
        raise SandboxError("forbidden", message, line, details)
    if missing_main is not None:
        line, message = missing_main
        raise SandboxError("syntax", message, line)
    try:
        code = compile(tree, filename, "exec")
    except (SyntaxError, ValueError, RecursionError) as exc:
        if isinstance(exc, SyntaxError):
            raise _syntax_error(exc) from None
        raise SandboxError("syntax", f"the script cannot be compiled: {exc}") from None
    return CompiledStrategy(source, filename, code, tuple(warnings))


ScriptFunction = Callable[[Any, Any], Any]


class _Sandbox:
    """Set by the child once it is locked down; `load_main` refuses to run anywhere else."""

    locked_down = False


def mark_locked_down() -> None:
    """Called by `apps.engine.sandbox.child` after `apply_limits`, and nowhere else."""
    _Sandbox.locked_down = True


class ScriptMain:
    """The script's `main(sdk, params)`, callable once per bar, plus its print log."""

    __slots__ = ("filename", "fn", "log")

    def __init__(self, fn: ScriptFunction, log: ScriptLog, filename: str) -> None:
        self.fn = fn
        self.log = log
        self.filename = filename

    def __call__(self, sdk: Any, params: Any) -> Any:
        return self.fn(sdk, params)


def load_main(
    source: str | CompiledStrategy,
    filename: str = "strategy.py",
    log: ScriptLog | None = None,
) -> ScriptMain:
    """Run the script's module body and return its `main`. ONLY inside the sandbox child.

    Raises `SandboxError` for syntax/forbidden source or a missing `main`; exceptions from
    the module body propagate (the child turns them into "runtime" errors with the line).
    There is no trusted in-process mode: outside the locked-down child this refuses.
    """
    if not _Sandbox.locked_down:
        raise RuntimeError(
            "load_main runs a user's script and works only inside the sandbox child; "
            "use apps.engine.sandbox.run_sandboxed"
        )
    compiled = (
        source if isinstance(source, CompiledStrategy) else compile_strategy(source, filename)
    )
    log = log if log is not None else ScriptLog()
    namespace = script_globals(log)
    exec(compiled.code, namespace)  # noqa: S102 - restricted code, in the limited child
    fn = namespace.get("main")
    if not callable(fn):
        raise SandboxError("syntax", "the script must define a function `def main(sdk, params):`")
    return ScriptMain(fn, log, compiled.filename)
