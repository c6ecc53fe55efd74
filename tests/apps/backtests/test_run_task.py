"""The Celery task, called directly on real shipped candles and real PostgreSQL."""

import numpy as np
import pytest

from apps.audit.models import AuditEvent
from apps.backtests.models import BacktestResult, BacktestTask, unpack_times, unpack_values
from apps.backtests.services import backtest_task_cancel, pair_execution_config
from apps.backtests.services import run as worker
from apps.backtests.tasks import backtest_task_run
from apps.engine.backtest import run_backtest
from apps.market.selectors import candles_load
from tests.apps.backtests.conftest import END, START, pair_input, task_create


@pytest.fixture
def task(alice, alice_version, candles, enqueued):
    from decimal import Decimal

    pairs = [
        pair_input(alice_version),
        pair_input(alice_version, "BNB/USDT", initial_capital=Decimal(5_000)),
    ]
    return task_create(alice, pairs, name="BTC and BNB")


def run(task_id, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return backtest_task_run(task_id)


def test_it_stores_results_and_the_aggregate_is_the_sum(
    task, pushes, django_capture_on_commit_callbacks
):
    assert run(task.pk, django_capture_on_commit_callbacks) is True
    task.refresh_from_db()
    assert (task.status, task.progress, task.error) == ("done", 100, "")
    assert task.started_at is not None and task.finished_at is not None
    pairs = list(task.pairs.order_by("position"))
    results = [BacktestResult.objects.get(pair=p) for p in pairs]
    finals = [r.metrics["final_equity"] for r in results]
    assert task.metrics["final_equity"] == pytest.approx(sum(finals), rel=1e-12)
    assert task.metrics["initial_equity"] == 15_000
    assert task.metrics["trade_count"] == sum(r.metrics["trade_count"] for r in results)
    # Same bar times for both pairs here, so the combined curve is the plain sum.
    times = [unpack_times(r.times) for r in results]
    assert np.array_equal(times[0], times[1])
    assert np.array_equal(unpack_times(task.equity_times), times[0])
    summed = unpack_values(results[0].equity).astype(float) + unpack_values(results[1].equity)
    assert np.allclose(unpack_values(task.equity_values), summed, rtol=1e-6)
    assert [p.status for p in pairs] == ["done", "done"]
    # Progress went out after each pair and at the end.
    assert [s["progress"] for s in pushes] == [0, 50, 99, 100]  # 100 only once combined
    assert pushes[-1]["status"] == "done"
    assert AuditEvent.objects.filter(event_type="backtests.task_finished").count() == 1


def test_trades_equal_run_backtest_for_the_same_version_and_config(
    task, pushes, django_capture_on_commit_callbacks
):
    run(task.pk, django_capture_on_commit_callbacks)
    for pair in task.pairs.all():
        candles = candles_load(
            exchange="binance", symbol=pair.symbol, timeframe="1h", start=START, end=END
        )
        report = run_backtest(
            pair.strategy_version.engine_spec(), candles, pair_execution_config(pair)
        )
        stored = list(pair.trades.order_by("number"))
        assert len(stored) == len(report.trades) > 10
        for row, trade in zip(report.trades, stored, strict=True):
            assert trade.entry_time.strftime("%Y-%m-%dT%H:%M:%SZ") == row.entry_time
            exit_time = trade.exit_time and trade.exit_time.strftime("%Y-%m-%dT%H:%M:%SZ")
            assert exit_time == row.exit_time
            assert (trade.entry_price, trade.exit_price) == (row.entry_price, row.exit_price)
            assert (trade.size, trade.fee, trade.pnl) == (row.size, row.fee, row.pnl)
            assert trade.exit_reason == row.exit_reason
        metrics = pair.result.metrics
        assert metrics["final_equity"] == report.metrics.final_equity
        assert metrics["sharpe"] == report.metrics.sharpe


def test_a_duplicate_message_is_a_no_op(task, pushes, django_capture_on_commit_callbacks):
    assert run(task.pk, django_capture_on_commit_callbacks) is True
    trades = sum(p.trades.count() for p in task.pairs.all())
    events = AuditEvent.objects.count()
    assert run(task.pk, django_capture_on_commit_callbacks) is False
    assert sum(p.trades.count() for p in task.pairs.all()) == trades
    assert AuditEvent.objects.count() == events
    assert BacktestResult.objects.filter(pair__task=task).count() == 2


def test_cancelling_stops_the_run_at_the_next_checkpoint(
    task, alice, pushes, monkeypatch, django_capture_on_commit_callbacks
):
    real_run_one = worker._run_one

    def run_one_then_cancel(task_, pair):
        report = real_run_one(task_, pair)
        if pair.position == 0:
            # The owner presses Cancel while the first pair is being simulated.
            backtest_task_cancel(task=task_, acting_user=alice)
        return report

    monkeypatch.setattr(worker, "_run_one", run_one_then_cancel)
    run(task.pk, django_capture_on_commit_callbacks)
    task.refresh_from_db()
    assert task.status == "cancelled"
    assert BacktestResult.objects.filter(pair__task=task).count() == 0
    assert task.metrics is None
    assert AuditEvent.objects.filter(event_type="backtests.task_cancelled").count() == 1
    assert pushes[-1]["status"] == "cancelled"


def test_a_cancelled_queued_task_never_runs(
    task, alice, pushes, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert backtest_task_cancel(task=task, acting_user=alice) is True
    assert run(task.pk, django_capture_on_commit_callbacks) is False
    task.refresh_from_db()
    assert task.status == "cancelled"
    assert backtest_task_cancel(task=task, acting_user=alice) is False


def test_an_error_marks_the_task_failed_with_the_reason(
    task, pushes, monkeypatch, django_capture_on_commit_callbacks
):
    def broken(*args, **kwargs):
        raise RuntimeError("engine exploded")

    monkeypatch.setattr(worker, "run_pair_backtest", broken)
    assert run(task.pk, django_capture_on_commit_callbacks) is True
    task.refresh_from_db()
    assert task.status == BacktestTask.Status.FAILED
    assert task.error == "RuntimeError: engine exploded"
    assert task.finished_at is not None
    assert pushes[-1]["status"] == "failed"
    assert AuditEvent.objects.filter(event_type="backtests.task_failed").count() == 1
