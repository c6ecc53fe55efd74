"""The import allowlist: which modules a script may import, and which names of each.

A script never receives a real module object: it gets a `SafeModule` holding just the
allowlisted names, because the real modules leak others (`statistics.sys` and
`datetime.sys` are the `sys` module, and with it `os`). policy.py explains what is left
out and why.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import functools
import itertools
import math
import statistics
import time
import types
from collections.abc import Iterable, Mapping
from typing import Any

from apps.engine.sandbox.errors import SandboxViolation


class SafeModule:
    """A read-only stand-in for a module: only its allowlisted names, nothing else."""

    __slots__ = ("_names", "_tl_name")

    def __init__(self, name: str, names: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_tl_name", name)
        object.__setattr__(self, "_names", dict(names))

    def __getattr__(self, attr: str) -> Any:
        names: dict[str, Any] = object.__getattribute__(self, "_names")
        try:
            return names[attr]
        except KeyError:
            modname = object.__getattribute__(self, "_tl_name")
            raise AttributeError(
                f"module {modname!r} has no attribute {attr!r} available to strategies"
            ) from None

    def __setattr__(self, attr: str, value: Any) -> None:
        raise SandboxViolation("modules are read-only in strategies")

    def __delattr__(self, attr: str) -> None:
        raise SandboxViolation("modules are read-only in strategies")

    def __repr__(self) -> str:
        return f"<module {object.__getattribute__(self, '_tl_name')!r} (strategy subset)>"

    def public_names(self) -> list[str]:
        return sorted(object.__getattribute__(self, "_names"))


def _public(module: types.ModuleType, names: Iterable[str] | None = None) -> dict[str, Any]:
    chosen = names if names is not None else getattr(module, "__all__", None) or dir(module)
    out: dict[str, Any] = {}
    for name in chosen:
        if name.startswith("_"):
            continue
        value = getattr(module, name)
        if isinstance(value, types.ModuleType):
            continue  # never hand out a module (statistics.sys, datetime.sys, ...)
        out[name] = value
    return out


# functools: no update_wrapper/wraps/partialmethod/singledispatchmethod/cached_property,
# which write dunders or instance dicts behind the write guard's back.
_FUNCTOOLS = ("reduce", "partial", "lru_cache", "cache", "cmp_to_key", "total_ordering")

ALLOWED_MODULES: dict[str, SafeModule] = {
    "math": SafeModule("math", _public(math)),
    "statistics": SafeModule("statistics", _public(statistics)),
    "itertools": SafeModule("itertools", _public(itertools)),
    "functools": SafeModule("functools", _public(functools, _FUNCTOOLS)),
    "collections": SafeModule("collections", _public(collections)),
    "datetime": SafeModule("datetime", _public(datetime)),
    "decimal": SafeModule("decimal", _public(decimal)),
}

# Why each well-known module is refused, for clear compile-time messages.
REFUSED_MODULE_REASONS: dict[str, str] = {
    "os": "no file, process or environment access",
    "sys": "no interpreter access",
    "subprocess": "no processes",
    "socket": "no network access",
    "shutil": "no file access",
    "pathlib": "no file access",
    "io": "no file access",
    "builtins": "no interpreter access",
    "importlib": "no interpreter access",
    "ctypes": "no native code",
    "pickle": "no pickles",
    "marshal": "no code objects",
    "threading": "no threads",
    "multiprocessing": "no processes",
    "asyncio": "no event loops",
    "urllib": "no network access",
    "http": "no network access",
    "requests": "no network access",
    "time": "no clock: use the candle times the sdk gives you",
    "random": "no randomness: backtests must repeat exactly",
    "numpy": "too large an escape surface (files, pickles, C pointers); "
    "the sdk provides indicators instead",
    "pandas": "too large an escape surface (files, pickles); the sdk provides indicators instead",
    "inspect": "no interpreter access",
    "gc": "no interpreter access",
}


def import_refusal(module: str) -> str | None:
    """None when `module` may be imported, else the reason why not."""
    if module in ALLOWED_MODULES:
        return None
    root = module.split(".")[0]
    reason = REFUSED_MODULE_REASONS.get(root, "not on the allowlist")
    allowed = ", ".join(sorted(ALLOWED_MODULES))
    return f'import of "{module}" is not allowed ({reason}); strategies may import: {allowed}'


# Modules that C code imports on the script's behalf (PyImport_Import goes through the
# script's `__import__`): `datetime.strftime` needs `time.strftime`. Never importable by an
# import statement - the compiler refuses `import time` before it can run.
_INTERNAL_IMPORTS: dict[str, SafeModule] = {
    "time": SafeModule("time", {"strftime": time.strftime}),
}


def guarded_import(
    name: str,
    globals: Mapping[str, Any] | None = None,
    locals: Mapping[str, Any] | None = None,
    fromlist: Iterable[str] | None = (),
    level: int = 0,
) -> SafeModule:
    if level != 0:
        raise SandboxViolation("relative imports are not allowed in strategies")
    if name in _INTERNAL_IMPORTS and not fromlist:
        return _INTERNAL_IMPORTS[name]
    reason = import_refusal(name)
    if reason is not None:
        raise SandboxViolation(reason)
    module = ALLOWED_MODULES[name]
    for item in fromlist or ():
        if item not in object.__getattribute__(module, "_names"):
            raise SandboxViolation(f'"{item}" cannot be imported from "{name}" in strategies')
    return module
