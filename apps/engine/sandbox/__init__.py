"""Sandbox for Python script strategies `def main(sdk, params)` (DESIGN.md §3).

- `compile_strategy(source)`: RestrictedPython compile + import allowlist; raises
  `SandboxError("syntax" | "forbidden", message, line)`. Never runs the script.
- `run_sandboxed(job, source, ...)`: runs a job ("package.module:function") in a limited
  child process (CPU, memory, wall clock, no new file descriptors, no privileges) and
  returns a `SandboxResult` (value or error, plus the script's print log).
- `load_main(source)`: inside the child only; the job calls the returned `main` per bar.

There is deliberately no in-process way to run a user's script.
"""

from apps.engine.sandbox.child import JobContext
from apps.engine.sandbox.compile import CompiledStrategy, ScriptMain, compile_strategy, load_main
from apps.engine.sandbox.errors import ERROR_KINDS, ErrorKind, SandboxError, SandboxViolation
from apps.engine.sandbox.imports import ALLOWED_MODULES
from apps.engine.sandbox.runner import SandboxLimits, SandboxResult, run_sandboxed
from apps.engine.sandbox.script_log import ScriptLog

__all__ = [
    "ALLOWED_MODULES",
    "ERROR_KINDS",
    "CompiledStrategy",
    "ErrorKind",
    "JobContext",
    "SandboxError",
    "SandboxLimits",
    "SandboxResult",
    "SandboxViolation",
    "ScriptLog",
    "ScriptMain",
    "compile_strategy",
    "load_main",
    "run_sandboxed",
]
