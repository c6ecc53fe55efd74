"""Futures pairs (leverage, short, funding, liquidation) and limit-order pairs, end to end:
created, run by the Celery task function on real candles and PostgreSQL, then shown."""

import csv
import io
import json
from decimal import Decimal

import pytest

from apps.backtests.tasks import backtest_task_run
from apps.engine.event_book import EventConfig
from apps.engine.futures import FuturesConfig
from apps.engine.pair_backtest import PairSettings, run_pair_backtest
from apps.engine.simulator import ExecutionConfig
from apps.market.selectors import candles_load
from tests.apps.backtests.conftest import END, START, pair_input, task_create

FEES = {"maker_fee": 0.0002, "taker_fee": 0.0005}


def run(task, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert backtest_task_run(task.pk) is True
    task.refresh_from_db()
    assert (task.status, task.error) == ("done", "")
    return task.pairs.get()


def engine_report(version, settings, symbol="BTC/USDT"):
    """The same run through the engine directly, with settings written out by hand."""
    candles = candles_load(exchange="binance", symbol=symbol, timeframe="1h", start=START, end=END)
    return run_pair_backtest(version.engine_spec(), candles, settings)


def execution(fee):
    return EventConfig(ExecutionConfig(cash=10_000, fee=fee), **FEES)


def assert_same_trades(pair, report):
    stored = list(pair.trades.order_by("number"))
    assert len(stored) == len(report.trades) > 5
    for row, want in zip(stored, report.trades, strict=True):
        assert row.entry_time.strftime("%Y-%m-%dT%H:%M:%SZ") == want.entry_time
        assert (row.entry_price, row.exit_price, row.size) == (
            want.entry_price,
            want.exit_price,
            want.size,
        )
        assert (row.fee, row.pnl, row.exit_reason, row.side) == (
            want.fee,
            want.pnl,
            want.exit_reason,
            want.side,
        )
    assert pair.result.metrics["final_equity"] == report.metrics.final_equity
    return stored


def chart_payload(client, pair):
    body = client.get(f"/backtests/pairs/{pair.pk}/").content.decode()
    data = body.split('id="bt-chart-data" type="application/json">')[1].split("</script>")[0]
    return body, json.loads(data)


def futures_pair(version, symbol="BTC/USDT", **overrides):
    values = {"leverage": Decimal(3), **{k: Decimal(str(v)) for k, v in FEES.items()}}
    return pair_input(version, symbol, **(values | overrides))


def test_a_leveraged_long_pays_funding_and_matches_the_engine(
    alice,
    alice_version,
    alice_client,
    candles,
    enqueued,
    pushes,
    django_capture_on_commit_callbacks,
):
    task = task_create(
        alice,
        [futures_pair(alice_version), futures_pair(alice_version, "BNB/USDT", leverage=Decimal(2))],
        market_type="futures",
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert backtest_task_run(task.pk) is True
    task.refresh_from_db()
    assert (task.status, task.error) == ("done", "")
    pair = task.pairs.get(symbol="BTC/USDT")
    settings = PairSettings(
        execution(0.0005),
        market="futures",
        futures=FuturesConfig(leverage=3, funding_rate=0.0001, maintenance_margin=0.005),
    )
    report = engine_report(alice_version, settings)
    stored = assert_same_trades(pair, report)
    assert {t.side for t in stored} == {"long"}
    spot = engine_report(alice_version, PairSettings(execution(0.0005)))
    assert report.metrics.final_equity != spot.metrics.final_equity  # leverage mattered
    funding = pair.result.metrics["funding_paid"]
    assert funding == report.metrics.funding_paid > 0  # longs pay a positive rate
    bnb = task.pairs.get(symbol="BNB/USDT").result.metrics
    assert task.metrics["funding_paid"] == pytest.approx(funding + bnb["funding_paid"])

    body, _ = chart_payload(alice_client, pair)
    assert 'id="metrics-funding"' in body and 'id="metrics-liquidations"' in body
    assert "Leverage <b>3\u00d7</b>" in body
    detail = alice_client.get(f"/backtests/{task.pk}/").content.decode()
    assert 'id="task-metrics-funding"' in detail


def test_a_short_is_stored_charted_and_exported_as_short(
    alice,
    alice_version,
    alice_client,
    candles,
    enqueued,
    pushes,
    django_capture_on_commit_callbacks,
):
    task = task_create(
        alice,
        [futures_pair(alice_version, leverage=Decimal(1), direction="short")],
        market_type="futures",
    )
    pair = run(task, django_capture_on_commit_callbacks)
    settings = PairSettings(
        execution(0.0005), market="futures", futures=FuturesConfig(direction="short")
    )
    stored = assert_same_trades(pair, engine_report(alice_version, settings))
    assert {t.side for t in stored} == {"short"}

    body, payload = chart_payload(alice_client, pair)
    # A short enters with a sell (red, above the bar) and leaves with a buy.
    shapes = [(m["shape"], m["position"]) for m in payload["markers"]]
    closed = sum(t.exit_time is not None for t in stored)
    assert shapes.count(("arrowDown", "aboveBar")) == len(stored)
    assert shapes.count(("arrowUp", "belowBar")) == closed
    assert "<td>Short</td>" in body
    response = alice_client.get(f"/backtests/pairs/{pair.pk}/trades.csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row["side"] for row in rows] == ["short"] * len(stored)


def test_high_leverage_is_liquidated_and_shown(
    alice,
    alice_version,
    alice_client,
    candles,
    enqueued,
    pushes,
    django_capture_on_commit_callbacks,
):
    task = task_create(
        alice, [futures_pair(alice_version, leverage=Decimal(50))], market_type="futures"
    )
    pair = run(task, django_capture_on_commit_callbacks)
    liquidated = pair.trades.filter(exit_reason="liquidation")
    assert pair.result.metrics["liquidations"] == liquidated.count() > 0
    assert task.metrics["liquidations"] == liquidated.count()
    _, payload = chart_payload(alice_client, pair)
    assert any(m["text"] == "LIQ" for m in payload["markers"])


def test_a_limit_order_pair_pays_the_maker_fee_and_matches_the_engine(
    alice, alice_version, candles, enqueued, pushes, django_capture_on_commit_callbacks
):
    pairs = [
        pair_input(
            alice_version,
            order_type="limit",
            limit_offset=Decimal("0.002"),
            **{k: Decimal(str(v)) for k, v in FEES.items()},
        )
    ]
    pair = run(task_create(alice, pairs), django_capture_on_commit_callbacks)
    settings = PairSettings(execution(0.0002), order_type="limit", limit_offset=0.002)
    report = engine_report(alice_version, settings)
    assert_same_trades(pair, report)
    market = engine_report(alice_version, PairSettings(execution(0.0005)))
    assert [t.entry_price for t in report.trades] != [t.entry_price for t in market.trades]
