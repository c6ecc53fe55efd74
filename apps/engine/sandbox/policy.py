"""What a script strategy may touch: the import allowlist, builtins and runtime guards.

Imports (imports.py). Only these modules, and only their listed public names, are importable:
`math`, `statistics`, `itertools`, `functools` (a subset), `collections`, `datetime`
and `decimal`. A script never receives a real module object: it gets a `SafeModule`
holding just the allowlisted names, because the real modules leak others
(`statistics.sys` and `datetime.sys` are the `sys` module, and with it `os`).

Not importable, on purpose:
- `numpy`/`pandas`: their surface is huge and reaches files (`ndarray.tofile`, `np.load`,
  `np.save`, `DataFrame.to_pickle`...), pickles, `ctypes` and C pointers. The sdk provides
  the indicator maths (vectorised, outside the script), so scripts do not need them.
- `random`, `time`, `os`, `sys`, `socket`, `subprocess`, `io`, `pickle`, `importlib`,
  `ctypes`, `threading`, ...: no clock, no randomness (backtests must repeat exactly), no
  files, no network, no processes.

Builtins are RestrictedPython's `safe_builtins` plus iteration helpers (`sorted`, `zip`,
`enumerate`, `min`, `max`, `sum`, ...), `set`/`frozenset` from `utility_builtins`, and
guarded `getattr`/`hasattr`/`setattr`/`delattr`. Left out: `open`, `exec`, `eval`,
`compile`, `__import__` (replaced by the allowlisted importer), `globals`, `locals`, `vars`,
`dir`, `type`, `object`, `super`, `input`, `breakpoint`, `memoryview`. `range` is the real
lazy `range`, not RestrictedPython's `limited_range` (capped at 1,000 items, which cannot
walk 50,000 bars); the memory limit covers `list(range(10**10))`.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import operator
import types
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from RestrictedPython.Guards import (
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safe_builtins,
)
from RestrictedPython.transformer import INSPECT_ATTRIBUTES
from RestrictedPython.Utilities import utility_builtins

from apps.engine.sandbox.errors import SandboxViolation
from apps.engine.sandbox.imports import SafeModule, guarded_import
from apps.engine.sandbox.script_log import PrintCollector, ScriptLog

# ---------------------------------------------------------------------------------------
# Names that are refused at compile time (clear message + line) and absent at runtime.

FORBIDDEN_NAMES: dict[str, str] = {
    "open": "no file access",
    "exec": "no dynamic code",
    "eval": "no dynamic code",
    "compile": "no dynamic code",
    "globals": "no namespace access",
    "locals": "no namespace access",
    "vars": "no namespace access",
    "dir": "no introspection",
    "type": "no introspection (use isinstance)",
    "object": "no introspection",
    "super": "no introspection",
    "input": "no console",
    "breakpoint": "no debugger",
    "help": "no console",
    "exit": "no interpreter control",
    "quit": "no interpreter control",
    "memoryview": "no raw memory",
    "classmethod": "not supported in strategies",
    "staticmethod": "not supported in strategies",
    "property": "not supported in strategies",
}

# Attribute names refused at runtime whatever the object: interpreter internals that do not
# start with "_" (RestrictedPython's list) and writers/evaluators of objects an sdk might
# hand out (numpy arrays, pandas frames).
DENIED_ATTRIBUTES: frozenset[str] = frozenset(INSPECT_ATTRIBUTES) | {
    "mro",
    "tofile",
    "dump",
    "dumps",
    "ctypes",
    "to_pickle",
    "to_csv",
    "to_parquet",
    "to_feather",
    "to_hdf",
    "to_sql",
    "to_excel",
    "to_json",
    "to_html",
    "to_latex",
    "to_markdown",
    "to_stata",
    "to_orc",
    "to_xml",
    "to_clipboard",
    "eval",
    "query",
}

_CLOCK_ATTRIBUTES = frozenset({"now", "utcnow", "today"})


# ---------------------------------------------------------------------------------------
# Runtime guards


def _refuse_attribute(obj: object, name: str) -> str | None:
    if name.startswith("_"):
        return f'"{name}" is a private or internal attribute; strategies cannot use it'
    if name in DENIED_ATTRIBUTES:
        return f'the attribute "{name}" is not available to strategies'
    stringy = (str, collections.UserString)
    is_str = isinstance(obj, stringy) or (isinstance(obj, type) and issubclass(obj, stringy))
    if is_str and name in ("format", "format_map"):
        return "str.format is not available to strategies (it reaches attributes); use f-strings"
    is_date = isinstance(obj, datetime.date) or (
        isinstance(obj, type) and issubclass(obj, datetime.date)
    )
    if is_date and name in _CLOCK_ATTRIBUTES:
        return f'datetime "{name}()" reads the clock; use the candle times the sdk gives you'
    return None


_MISSING = object()
# Names that need a closer look; every other public name takes the fast path.
_CHECKED_NAMES = DENIED_ATTRIBUTES | _CLOCK_ATTRIBUTES | {"format", "format_map"}


def guarded_getattr(obj: object, name: str, default: Any = _MISSING) -> Any:
    """`_getattr_` and the `getattr` builtin: refuses internals, never returns a module.

    Runs on every attribute read a script makes, so the common case is kept short.
    """
    if type(name) is not str:
        raise TypeError("attribute name must be a string")
    if name[:1] == "_" or name in _CHECKED_NAMES:
        reason = _refuse_attribute(obj, name)
        if reason is not None:
            raise SandboxViolation(reason)
    value = getattr(obj, name) if default is _MISSING else getattr(obj, name, default)
    if isinstance(value, types.ModuleType):
        raise SandboxViolation(f'the attribute "{name}" is a module; strategies cannot use it')
    return value


def guarded_hasattr(obj: object, name: str) -> bool:
    try:
        guarded_getattr(obj, name)
    except AttributeError:
        return False
    return True


def guarded_getitem(obj: Any, index: Any) -> Any:
    return obj[index]


# Classes the script itself defined: their instances take attribute writes.
_SCRIPT_CLASSES: weakref.WeakSet[type] = weakref.WeakSet()


def script_metaclass(name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> type:
    """`__metaclass__` for class statements (RestrictedPython rewrites them to use it)."""
    cls = type(name, bases, namespace)
    _SCRIPT_CLASSES.add(cls)
    return cls


_WRITABLE_TYPES = (
    dict,
    list,
    set,
    bytearray,
    collections.deque,
    collections.OrderedDict,
    decimal.Context,  # `decimal.getcontext().prec = 10`: the child's own decimal context
)


def guarded_write(obj: Any) -> Any:
    """`_write_`: a script may mutate its own containers and instances of its own classes."""
    if type(obj) in _WRITABLE_TYPES or type(obj) in _SCRIPT_CLASSES:
        return obj
    if isinstance(obj, (collections.defaultdict, collections.Counter)):
        return obj
    if isinstance(obj, types.ModuleType | SafeModule):
        raise SandboxViolation("modules are read-only in strategies")
    if getattr(obj, "_guarded_writes", False):
        return obj  # objects that check writes themselves (the sdk's state, if it wants)
    raise SandboxViolation(f"objects of type {type(obj).__name__} are read-only in strategies")


def guarded_setattr(obj: Any, name: str, value: Any) -> None:
    if type(name) is not str or name.startswith("_"):
        raise SandboxViolation("strategies cannot set private or internal attributes")
    setattr(guarded_write(obj), name, value)


def guarded_delattr(obj: Any, name: str) -> None:
    if type(name) is not str or name.startswith("_"):
        raise SandboxViolation("strategies cannot delete private or internal attributes")
    delattr(guarded_write(obj), name)


_INPLACE_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd,
    "-=": operator.isub,
    "*=": operator.imul,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "%=": operator.imod,
    "**=": operator.ipow,
    "<<=": operator.ilshift,
    ">>=": operator.irshift,
    "|=": operator.ior,
    "^=": operator.ixor,
    "&=": operator.iand,
    "@=": operator.imatmul,
}


def guarded_inplacevar(op: str, target: Any, value: Any) -> Any:
    try:
        fn = _INPLACE_OPS[op]
    except KeyError:
        raise SandboxViolation(f"unsupported in-place operator {op!r}") from None
    return fn(target, value)


def guarded_apply(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return fn(*args, **kwargs)


# ---------------------------------------------------------------------------------------
# The script's globals


def _builtins() -> dict[str, Any]:
    out: dict[str, Any] = {
        name: value
        for name, value in safe_builtins.items()
        if name not in ("setattr", "delattr", "_getattr_")
    }
    out.update(
        {
            "set": utility_builtins["set"],
            "frozenset": utility_builtins["frozenset"],
            "list": list,
            "tuple": tuple,
            "dict": dict,
            "range": range,
            "len": len,
            "min": min,
            "max": max,
            "sum": sum,
            "any": any,
            "all": all,
            "sorted": sorted,
            "reversed": reversed,
            "enumerate": enumerate,
            "zip": zip,
            "map": map,
            "filter": filter,
            "iter": iter,
            "next": next,
            "abs": abs,
            "round": round,
            "divmod": divmod,
            "pow": pow,
            "format": None,  # removed below: format(obj, spec) is str.format's cousin
            "getattr": guarded_getattr,
            "hasattr": guarded_hasattr,
            "setattr": guarded_setattr,
            "delattr": guarded_delattr,
            "__import__": guarded_import,
        }
    )
    del out["format"]
    for name in FORBIDDEN_NAMES:
        out.pop(name, None)
    return out


SAFE_BUILTINS: Mapping[str, Any] = types.MappingProxyType(_builtins())


def script_globals(log: ScriptLog, name: str = "strategy") -> dict[str, Any]:
    """A fresh global namespace for one script, printing into `log`."""
    collector = PrintCollector(log)

    def print_factory(_getattr_: Any = None) -> PrintCollector:
        return collector

    return {
        "__builtins__": dict(SAFE_BUILTINS),
        "__name__": name,
        "__metaclass__": script_metaclass,
        "_getattr_": guarded_getattr,
        "_getitem_": guarded_getitem,
        "_getiter_": iter,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_write_": guarded_write,
        "_inplacevar_": guarded_inplacevar,
        "_apply_": guarded_apply,
        "_print_": print_factory,
    }
