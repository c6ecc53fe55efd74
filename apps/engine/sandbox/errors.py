"""Structured errors for sandboxed script strategies.

Every way a script run can end badly maps to one `SandboxError` with a `kind` the UI and
the bot log can show, a human message, and (where known) the script's line number.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

ErrorKind = Literal["syntax", "forbidden", "timeout", "cpu", "memory", "runtime", "crash"]
ERROR_KINDS: tuple[str, ...] = get_args(ErrorKind)


class SandboxError(Exception):
    """A script run that ended with an error: bad source, a refused operation or a limit.

    kind:
      - "syntax": the source does not parse;
      - "forbidden": the source (compile time) or the running script (runtime guard) tried
        something the sandbox refuses: a non-allowlisted import, `open`, a dunder, ...;
      - "timeout": the wall-clock limit;
      - "cpu": the CPU-time limit;
      - "memory": the memory limit (MemoryError in the child);
      - "runtime": an exception raised while the script ran (with the script's line);
      - "crash": the child died or answered nonsense (signal, bad result, job bug).
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        line: int | None = None,
        details: tuple[str, ...] = (),
    ) -> None:
        super().__init__(kind, message, line)
        self.kind: ErrorKind = kind
        self.message = message
        self.line = line
        self.details = details

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line is not None else ""
        return f"{self.kind}: {self.message}{where}"

    def __repr__(self) -> str:
        return f"SandboxError(kind={self.kind!r}, message={self.message!r}, line={self.line!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SandboxError):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.kind, self.message, self.line))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "line": self.line,
            "details": list(self.details),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SandboxError:
        kind = data.get("kind")
        if kind not in ERROR_KINDS:
            return cls("crash", f"child reported an unknown error kind {kind!r}")
        line = data.get("line")
        return cls(
            kind,
            str(data.get("message", "")),
            line if isinstance(line, int) else None,
            tuple(str(d) for d in data.get("details") or ()),
        )


class SandboxViolation(Exception):
    """Raised by the runtime guards when a running script reaches for something refused."""
