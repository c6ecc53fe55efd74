"""Writes for optimisations: create (validate and plan first), cancel, adopt parameters,
and the worker's chunks."""

from apps.optimizations.services.actions import optimization_params_adopt, optimization_task_cancel
from apps.optimizations.services.create import (
    MAX_BACKTESTS,
    MAX_COMBINATIONS,
    OptimizationInput,
    OptimizationInvalid,
    optimization_task_create,
)
from apps.optimizations.services.run import (
    STALE_ERROR,
    optimization_chunk_run,
    optimization_task_fail,
    optimization_tasks_fail_stale,
)

__all__ = [
    "MAX_BACKTESTS",
    "MAX_COMBINATIONS",
    "STALE_ERROR",
    "OptimizationInput",
    "OptimizationInvalid",
    "optimization_chunk_run",
    "optimization_params_adopt",
    "optimization_task_cancel",
    "optimization_task_create",
    "optimization_task_fail",
    "optimization_tasks_fail_stale",
]
