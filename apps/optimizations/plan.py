"""From a stored task to the engine's terms: the full space, jobs and chunks.

Creation and every chunk build the jobs with the same functions, so chunk n of a task
always covers the same backtests, whichever worker runs it and however often.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from apps.engine.optimize import Job, SearchPlan, WalkForwardPlan, window_bounds
from apps.optimizations.models import OptimizationTask

# Chunks per task: enough for a smooth progress bar and for several worker processes to
# share the work; each chunk also loads the candles once, so not many more.
TARGET_CHUNKS = 20
# Candle-bars one chunk may simulate (jobs x bars): a few seconds of work, far inside the
# task time limit even on minute candles over years.
CHUNK_BAR_BUDGET = 40_000_000


def full_space(*, version_params: Mapping[str, Any], varied: Mapping[str, Any]) -> dict[str, Any]:
    """The varied parameters, plus every other parameter fixed at the version's value
    (the engine would fill them with the template's defaults instead)."""
    fixed = {name: [value] for name, value in version_params.items() if name not in varied}
    return {**fixed, **varied}


def search_of(task: OptimizationTask) -> SearchPlan:
    return SearchPlan(task.template, task.metric, list(task.combinations), [])


def walk_forward_of(task: OptimizationTask) -> WalkForwardPlan:
    assert task.in_sample is not None and task.out_of_sample is not None
    bounds = window_bounds(
        task.candle_count, task.in_sample, task.out_of_sample, task.step, task.anchored
    )
    return WalkForwardPlan(search_of(task), bounds, warmup=task.in_sample)


def task_jobs(task: OptimizationTask) -> list[Job]:
    """Every backtest of the task, in job order."""
    if task.is_walk_forward:
        return walk_forward_of(task).jobs()
    return search_of(task).jobs(task.candle_count)


def chunk_jobs(task: OptimizationTask, chunk: int) -> list[Job]:
    begin = chunk * task.chunk_size
    return task_jobs(task)[begin : begin + task.chunk_size]


def chunk_size_for(*, jobs: int, bars: int) -> int:
    by_count = math.ceil(jobs / TARGET_CHUNKS)
    by_budget = max(1, CHUNK_BAR_BUDGET // max(bars, 1))
    return max(1, min(by_count, by_budget))
