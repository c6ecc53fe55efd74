"""Grid and DCA versions (no condition trees) backtest end to end: created, run by the
Celery task function on real candles and PostgreSQL, and shown with trades and a chart."""

import json

import pytest

from apps.backtests.models import BacktestTask
from apps.backtests.services import BacktestInvalid
from apps.backtests.tasks import backtest_task_run
from apps.engine.decide import build_strategy
from apps.engine.event_book import EventConfig
from apps.engine.events import run_events
from apps.engine.simulator import ExecutionConfig
from apps.engine.strategies.base import EventSpec
from apps.market.selectors import candles_load
from apps.strategies.services import strategy_create
from tests.apps.backtests.conftest import END, START, pair_input, task_create

TEMPLATES = {
    "grid": {"levels": 8, "spacing": 0.02},
    "dca": {"interval": 48, "slice": 0.05, "take_profit": 0.04},
}


def template_version(owner, template: str):
    _strategy, version = strategy_create(
        owner=owner,
        name=f"My {template}",
        kind="template",
        template=template,
        params=TEMPLATES[template],
    )
    return version


def create(owner, version, **pair_overrides):
    return task_create(owner, [pair_input(version, **pair_overrides)], name="Event template")


@pytest.mark.parametrize("template", ["grid", "dca"])
def test_a_template_runs_through_the_task_with_the_engines_trades(
    template, alice, alice_client, candles, enqueued, pushes, django_capture_on_commit_callbacks
):
    task = create(alice, template_version(alice, template))
    with django_capture_on_commit_callbacks(execute=True):
        assert backtest_task_run(task.pk) is True
    task.refresh_from_db()
    assert (task.status, task.error) == (BacktestTask.Status.DONE, "")

    # The same strategy on the same candles, through the engine's event path directly.
    candles = candles_load(
        exchange="binance", symbol="BTC/USDT", timeframe="1h", start=START, end=END
    )
    config = EventConfig(ExecutionConfig(cash=10_000, fee=0.001), maker_fee=0.001, taker_fee=0.001)
    expected = run_events(build_strategy(EventSpec(template, TEMPLATES[template])), candles, config)
    pair = task.pairs.get()
    stored = list(pair.trades.order_by("number"))
    assert len(stored) == len(expected.trades) > 3
    for row, want in zip(stored, expected.trades, strict=True):
        assert (row.entry_price, row.exit_price) == (want.entry_price, want.exit_price)
        assert (row.size, row.pnl, row.exit_reason) == (want.size, want.pnl, want.exit_reason)
    assert pair.result.metrics["final_equity"] == pytest.approx(expected.final_equity, rel=1e-12)

    body = alice_client.get(f"/backtests/pairs/{pair.pk}/").content.decode()
    payload = json.loads(
        body.split('id="bt-chart-data" type="application/json">')[1].split("</script>")[0]
    )
    assert len(payload["candles"]) == pair.result.candle_count
    entries = [m for m in payload["markers"] if m["shape"] == "arrowUp"]
    assert len(entries) == len(stored)


@pytest.mark.parametrize("template", ["grid", "dca"])
def test_a_template_that_places_its_own_orders_refuses_the_limit_order_type(
    template, alice, candles, enqueued
):
    with pytest.raises(BacktestInvalid) as info:
        create(alice, template_version(alice, template), order_type="limit")
    assert info.value.field == "pairs[0].order_type"
    assert "places its own orders" in info.value.message
    assert BacktestTask.objects.count() == 0 and enqueued == []


@pytest.mark.parametrize("template", ["grid", "dca"])
def test_a_template_that_places_its_own_orders_refuses_futures(template, alice, candles, enqueued):
    with pytest.raises(BacktestInvalid) as info:
        task_create(alice, [pair_input(template_version(alice, template))], market_type="futures")
    assert info.value.field == "pairs[0].strategy_version"
    assert "backtests on spot only" in info.value.message
    assert BacktestTask.objects.count() == 0 and enqueued == []
