"""What a script prints: RestrictedPython's rewritten `print` writes into a bounded log."""

from __future__ import annotations

from typing import Any

from apps.engine.sandbox.errors import SandboxViolation


class ScriptLog:
    """Collects what the script prints (one shared log, whichever function prints).

    Bounded: beyond `max_chars` the rest is dropped and a note says so, so a chatty script
    cannot blow up the result or the bot log.
    """

    def __init__(self, max_chars: int = 1_000_000) -> None:
        self.max_chars = max_chars
        self._parts: list[str] = []
        self._size = 0
        self.truncated = False

    def write(self, text: str) -> None:
        if self.truncated:
            return
        room = self.max_chars - self._size
        if len(text) > room:
            self._parts.append(text[:room])
            self._parts.append("\n[log truncated]\n")
            self._size = self.max_chars
            self.truncated = True
            return
        self._parts.append(text)
        self._size += len(text)

    def text(self) -> str:
        return "".join(self._parts)

    def clear(self) -> None:
        self._parts.clear()
        self._size = 0
        self.truncated = False


class PrintCollector:
    """What RestrictedPython's rewritten `print(...)` calls (`_print._call_print`)."""

    def __init__(self, log: ScriptLog) -> None:
        self._log = log

    def _call_print(
        self, *objects: Any, sep: str | None = " ", end: str | None = "\n", **kwargs: Any
    ) -> None:
        if kwargs.get("file") is not None:
            raise SandboxViolation("print(file=...) is not available to strategies")
        sep = " " if sep is None else sep
        end = "\n" if end is None else end
        if type(sep) is not str or type(end) is not str:
            raise TypeError("sep and end must be strings")
        self._log.write(sep.join(str(o) for o in objects) + end)

    def __call__(self) -> str:
        # The `printed` variable: everything printed so far.
        return self._log.text()
