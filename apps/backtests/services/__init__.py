"""Writes for backtests: create (validate everything first), cancel, fail, and the worker's run.

Modules by concern: `validate` (checks that name each field), `create`, `run` (the worker),
`results` (storing a pair's result and the aggregate), `cancel`, `fail`, and `pair_config`
(from a stored pair to the engine's settings). Callers import from here.
"""

from apps.backtests.services.cancel import backtest_task_cancel
from apps.backtests.services.create import backtest_task_create
from apps.backtests.services.fail import STALE_ERROR, backtest_task_fail, backtest_tasks_fail_stale
from apps.backtests.services.pair_config import (
    pair_event_config,
    pair_execution_config,
    pair_settings,
    version_engine_spec,
    version_is_event_template,
    version_is_recorded,
    version_is_script,
    version_places_own_orders,
    version_script_check,
)
from apps.backtests.services.results import BacktestCancelled
from apps.backtests.services.run import backtest_task_run
from apps.backtests.services.validate import MAX_NAME, MAX_PAIRS, BacktestInvalid, PairInput

__all__ = [
    "MAX_NAME",
    "MAX_PAIRS",
    "STALE_ERROR",
    "BacktestCancelled",
    "BacktestInvalid",
    "PairInput",
    "backtest_task_cancel",
    "backtest_task_create",
    "backtest_task_fail",
    "backtest_task_run",
    "backtest_tasks_fail_stale",
    "pair_event_config",
    "pair_execution_config",
    "pair_settings",
    "version_engine_spec",
    "version_is_event_template",
    "version_is_recorded",
    "version_is_script",
    "version_places_own_orders",
    "version_script_check",
]
