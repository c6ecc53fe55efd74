"""Parameter optimisation for template strategies: grid, random and walk-forward search.

A parameter space maps template parameter names to one of:

- a list of values, or ``{"values": [...]}``;
- a range, ``{"min": 5, "max": 50, "step": 5}`` (both ends included);
- a random draw, ``{"random": "uniform" | "int", "min": .., "max": ..}`` (random search only).

Every value and bound is checked against the template's `ParamSpec` (type and min/max), and
errors name the parameter. Parameters left out keep the template's defaults. A combination
the template refuses as a whole (``fast >= slow``) is skipped and counted, not scored.

Scores are Metrics fields where higher is better (`SCORE_METRICS`). A run whose metric is
undefined (no trades, so no Sharpe) has score None and sorts after every scored row.

Every search is planned first (`search_plan`, `walk_forward_plan`: the combinations and
windows, checked), then run as jobs, one backtest each (`evaluate.py`). Parallel runs use a
`ProcessPoolExecutor`: each worker receives the candles, execution config and template once,
through the pool initializer; a job carries only parameters and the bar range to test.
Results come back in job order, so a parallel run equals a serial one. A caller that spreads
the jobs some other way (the platform's Celery chunks) runs `evaluate_jobs` on each share and
joins the results with `rank_rows` or `walk_forward_summary`.

Walk-forward and the overfitting rule
-------------------------------------
Windows advance by `step` bars. Each window optimises on its in-sample (IS) bars
``[is_start, is_end)`` (rolling: the last `in_sample` bars; anchored: from bar 0) and then
runs the best parameters on the following out-of-sample (OOS) bars ``[is_end, oos_end)``.
The OOS run computes its signals over `warmup` bars before the window as well, so the
indicators are ready, but it simulates (and so trades and accrues equity) only inside the
window. The stitched OOS equity chains the windows: each starts with the previous window's
final equity.

Efficiency is OOS score / IS score. A window is flagged when its IS score is positive and its
OOS score is missing or below ``threshold * IS`` (default 0.5). The whole run is flagged
overfit when the mean IS score is positive and mean OOS / mean IS is below the threshold
(means over windows where both scores exist). With a non-positive IS score there is no edge
to lose, so nothing is flagged. Compare a length-independent metric (sharpe, sortino,
calmar, annualized_return): IS windows are usually longer than OOS windows, so total_return
of the two is not like for like.
"""

from apps.engine.optimize.evaluate import (
    EvaluationContext,
    Job,
    Row,
    SearchPlan,
    Skipped,
    evaluate,
    evaluate_jobs,
    metric_score,
    rank_rows,
    search_plan,
)
from apps.engine.optimize.search import (
    Heatmap,
    OptimizationResult,
    grid_search,
    heatmap,
    optimize,
    random_search,
)
from apps.engine.optimize.space import (
    DEFAULT_THRESHOLD,
    MAX_COMBINATIONS,
    SCORE_METRICS,
    OptimizationError,
    ParamSpace,
)
from apps.engine.optimize.walkforward import (
    WalkForwardPlan,
    WalkForwardResult,
    WalkForwardWindow,
    out_of_sample_run,
    walk_forward,
    walk_forward_plan,
    walk_forward_summary,
    window_bounds,
)

__all__ = [
    "DEFAULT_THRESHOLD",
    "MAX_COMBINATIONS",
    "SCORE_METRICS",
    "EvaluationContext",
    "Heatmap",
    "Job",
    "OptimizationError",
    "OptimizationResult",
    "ParamSpace",
    "Row",
    "SearchPlan",
    "Skipped",
    "WalkForwardPlan",
    "WalkForwardResult",
    "WalkForwardWindow",
    "evaluate",
    "evaluate_jobs",
    "grid_search",
    "heatmap",
    "metric_score",
    "optimize",
    "out_of_sample_run",
    "random_search",
    "rank_rows",
    "search_plan",
    "walk_forward",
    "walk_forward_plan",
    "walk_forward_summary",
    "window_bounds",
]
