"""Strategies and their immutable versions.

A `Strategy` is the name a trader knows; its behaviour lives in `StrategyVersion` rows,
numbered 1..n. Versions never change once written (a database trigger refuses UPDATE,
and `save()` refuses an existing row), so a backtest or a bot that points at a version
always replays exactly what was tested.

Deleting: a version may only disappear together with its strategy (the CASCADE of a
strategy delete, for example when an operator deletes a user). A deferred trigger refuses
a DELETE of a version whose strategy still exists at commit. People archive strategies
instead of deleting them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings
from django.db import models

from apps.common.models import BaseModel
from apps.engine.backtest import StrategySpec, StrategySpecError
from apps.engine.strategies.base import EventSpec


class StrategyKind(models.TextChoices):
    TEMPLATE = "template", "Template"
    CONDITIONS = "conditions", "Condition builder"
    SCRIPT = "script", "Python script"
    # A signal bot's accepted alerts, snapshotted for a backtest (apps/strategies/recorded.py);
    # read-only: never written in the editor, never optimised, never run by a bot.
    RECORDED = "recorded", "Recorded alerts"


# The kinds a person writes in the strategy editor and the API.
EDITABLE_KINDS = (StrategyKind.TEMPLATE, StrategyKind.CONDITIONS, StrategyKind.SCRIPT)


class Strategy(BaseModel):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="strategies"
    )
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    # Fixed at creation: a version's content only makes sense for its strategy's kind.
    kind = models.CharField(max_length=16, choices=StrategyKind.choices)
    # Set when the owner archives it; archived strategies keep their versions for the
    # backtests and bots that point at them, but leave the list.
    archived_at = models.DateTimeField(null=True, blank=True)
    # Recorded kind only: the signal bot whose alerts the versions hold (one strategy per
    # bot). SET_NULL keeps the snapshots, and the backtests that point at them, if the
    # bot goes.
    signal_bot = models.OneToOneField(
        "bots.Bot",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="recorded_strategy",
    )

    class Meta:
        verbose_name_plural = "strategies"
        ordering = ("-updated_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=("owner", "name"), name="strategy_name_unique_per_owner"
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=StrategyKind.values), name="strategy_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    @property
    def is_editable(self) -> bool:
        return self.kind in EDITABLE_KINDS


class ImmutableVersionError(RuntimeError):
    """A saved version was about to be changed."""


def spec_content(
    *,
    kind: str,
    template: str,
    params: dict[str, Any],
    entry: Any,
    exit: Any,
    script: str,
) -> dict[str, Any]:
    """The parts of a version that decide its behaviour; what `content_hash` covers."""
    return {
        "kind": kind,
        "template": template,
        "params": params,
        "entry": entry,
        "exit": exit,
        "script": script,
    }


def content_hash(content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class StrategyVersion(models.Model):
    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="versions")
    # 1..n per strategy, in creation order.
    number = models.PositiveIntegerField()
    # Template kind only: the engine template's name (apps.engine.templates.TEMPLATES).
    template = models.CharField(max_length=64, blank=True)
    # Template parameters (resolved, with defaults filled in), the condition trees'
    # {"param": ...} values, or the params passed to a script's main(sdk, params).
    params = models.JSONField(default=dict, blank=True)
    # Condition trees (apps.engine.conditions). For a template, a snapshot of the template's
    # trees when the version was made, so later engine changes never alter it. Null for
    # scripts and for event-path templates (grid, DCA).
    entry = models.JSONField(null=True, blank=True)
    exit = models.JSONField(null=True, blank=True)
    # Script kind only: Python source defining main(sdk, params).
    script = models.TextField(blank=True)
    # sha256 of the canonical JSON of spec_content(); equal hashes mean equal behaviour.
    content_hash = models.CharField(max_length=64)
    # RESTRICT, not SET_NULL: nulling it would be an UPDATE, which the trigger refuses.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.RESTRICT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ("strategy_id", "number")
        constraints = [
            models.UniqueConstraint(
                fields=("strategy", "number"), name="strategy_version_number_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(number__gte=1), name="strategy_version_number_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.strategy.name} v{self.number}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ImmutableVersionError("strategy versions are immutable; create a new version")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    @property
    def kind(self) -> str:
        return self.strategy.kind

    def content(self) -> dict[str, Any]:
        return spec_content(
            kind=self.kind,
            template=self.template,
            params=self.params,
            entry=self.entry,
            exit=self.exit,
            script=self.script,
        )

    @property
    def recorded_symbols(self) -> list[str]:
        """Recorded kind: the symbols the snapshot holds alerts for (the only ones it
        backtests); empty for other kinds."""
        if self.kind != StrategyKind.RECORDED:
            return []
        return sorted((self.params or {}).get("alerts", {}))

    def engine_spec(self, *, symbol: str = "") -> StrategySpec | EventSpec:
        """The engine's spec: a StrategySpec for a template or condition version, and for
        a recorded-alerts version the `EventSpec("recorded", ...)` of `symbol`'s alerts.

        Raises StrategySpecError for scripts (run them through the sandbox with
        `script_source`), for event-path templates (grid, DCA), which have no trees, and
        for a symbol a recorded version holds no alerts for (field "symbol").
        """
        if self.kind == StrategyKind.RECORDED:
            alerts = (self.params or {}).get("alerts", {}).get(symbol)
            if not alerts:
                held = ", ".join(self.recorded_symbols) or "none"
                raise StrategySpecError(
                    f"{self} holds no recorded alerts for {symbol or 'this symbol'}; "
                    f"it backtests only the symbols it holds alerts for: {held}",
                    "symbol",
                )
            return EventSpec("recorded", {"alerts": alerts})
        if self.kind == StrategyKind.SCRIPT:
            raise StrategySpecError("a script strategy runs in the sandbox, not as conditions")
        if self.entry is None or self.exit is None:
            raise StrategySpecError(
                f"template {self.template!r} runs on the event path, not as conditions",
                "strategy",
            )
        if self.kind == StrategyKind.TEMPLATE:
            spec = StrategySpec("template", self.entry, self.exit, dict(self.params), self.template)
            spec.validate()
            return spec
        return StrategySpec.from_tree({"entry": self.entry, "exit": self.exit}, self.params)

    @property
    def script_source(self) -> str:
        """The script for the sandbox; empty for other kinds."""
        return self.script
