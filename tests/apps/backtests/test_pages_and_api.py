"""Pages, the CSV export and the API, on a task run for real."""

import csv
import io
import json
from decimal import Decimal

import pytest

from apps.backtests.models import BacktestTask
from apps.backtests.tasks import backtest_task_run
from tests.apps.backtests.conftest import pair_input, task_create


@pytest.fixture
def done_task(alice, alice_version, candles, enqueued, pushes, django_capture_on_commit_callbacks):
    pairs = [pair_input(alice_version), pair_input(alice_version, "BNB/USDT")]
    task = task_create(alice, pairs, name="BTC and BNB")
    with django_capture_on_commit_callbacks(execute=True):
        backtest_task_run(task.pk)
    task.refresh_from_db()
    return task


def form_data(version, **overrides):
    data = {
        "name": "From the form",
        "exchange": "binance",
        "market_type": "spot",
        "start": "2020-09-01",
        "end": "2021-02-28",
        "pairs-TOTAL_FORMS": "1",
        "pairs-INITIAL_FORMS": "0",
        "pairs-MIN_NUM_FORMS": "1",
        "pairs-MAX_NUM_FORMS": "20",
        "pairs-0-symbol": "BTC/USDT",
        "pairs-0-timeframe": "1h",
        "pairs-0-strategy_version": str(version.pk),
        "pairs-0-initial_capital": "10000",
        "pairs-0-order_type": "market",
        "pairs-0-taker_fee": "0.1",
        "pairs-0-maker_fee": "0.1",
        "pairs-0-slippage": "0",
        "pairs-0-sizing": "all_in",
        "pairs-0-size_value": "1",
    }
    return data | overrides


def test_the_list_shows_an_empty_state_then_tasks(alice_client, done_task):
    BacktestTask.objects.all().delete()
    response = alice_client.get("/backtests/")
    assert response.status_code == 200
    assert b'id="no-backtests"' in response.content


def test_the_list_shows_status_and_pairs(alice_client, done_task):
    body = alice_client.get("/backtests/").content.decode()
    assert f'id="backtest-{done_task.pk}"' in body
    assert "BTC and BNB" in body and "Done" in body


def test_the_create_page_offers_only_my_versions_with_defaults(
    alice_client, alice_version, charlie_version, candles
):
    body = alice_client.get("/backtests/new/").content.decode()
    assert f'value="{alice_version.pk}"' in body
    assert f'value="{charlie_version.pk}"' not in body
    assert 'name="pairs-0-taker_fee" value="0.1"' in body
    assert 'value="all_in" selected' in body
    assert "Paid on each market fill" in body  # help text


def test_creating_from_the_form_queues_and_redirects(
    alice_client, alice_version, candles, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post("/backtests/new/", form_data(alice_version))
    task = BacktestTask.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/backtests/{task.pk}/"
    assert enqueued == [((task.pk,), task.celery_task_id)]
    pair = task.pairs.get()
    assert pair.taker_fee == Decimal("0.001")  # the form's 0.1 % as a fraction
    assert task.end.isoformat() == "2021-03-01T00:00:00+00:00"  # through the end day


def test_leverage_on_spot_and_missing_candles_are_form_errors(
    alice_client, alice_version, candles, enqueued
):
    response = alice_client.post(
        "/backtests/new/", form_data(alice_version, **{"pairs-0-leverage": "3"})
    )
    body = response.content.decode()
    assert '<small class="bt-field-error" id="id_pairs-0-leverage_error"' in body
    assert "leverage above 1 needs a futures market" in body
    # The futures block is shown despite the spot market, so the error can be seen.
    assert '<div class="bt-futures">' in body
    response = alice_client.post(
        "/backtests/new/", form_data(alice_version, **{"pairs-0-symbol": "ETH/USDT"})
    )
    assert "no candles for ETH/USDT 1h" in response.content.decode()
    assert BacktestTask.objects.count() == 0 and enqueued == []


def test_the_form_creates_a_futures_limit_pair_from_percentages(
    alice_client, alice_version, candles, enqueued, django_capture_on_commit_callbacks
):
    typed = {
        "market_type": "futures",
        "pairs-0-order_type": "limit",
        "pairs-0-limit_offset": "0.2",
        "pairs-0-maker_fee": "0.02",
        "pairs-0-leverage": "10",
        "pairs-0-direction": "short",
        "pairs-0-funding_rate": "-0.005",
        "pairs-0-maintenance_margin": "1",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post("/backtests/new/", form_data(alice_version, **typed))
    assert response.status_code == 302, response.content.decode()
    pair = BacktestTask.objects.get(market_type="futures").pairs.get()
    assert (pair.order_type, pair.limit_offset, pair.maker_fee) == (
        "limit",
        Decimal("0.002"),
        Decimal("0.0002"),
    )
    assert (pair.leverage, pair.direction) == (10, "short")
    assert (pair.funding_rate, pair.maintenance_margin) == (Decimal("-0.00005"), Decimal("0.01"))


def test_the_create_page_hides_futures_and_limit_fields_until_they_apply(
    alice_client, alice_version, candles
):
    body = alice_client.get("/backtests/new/").content.decode()
    for help_text in (
        "limit orders rest for one bar at the signal bar&#x27;s close moved by the offset",
        "Unfilled, an entry is skipped and an exit becomes a market order",
        "buys rest this far below the signal close",
        "the position is margin x leverage",
        "every 8 h on the position",
        "isolated margin: liquidated",
    ):
        assert help_text in body
    assert '<div class="bt-futures" hidden>' in body
    assert '<div class="bt-limit" hidden>' in body
    # A futures task with a limit order, re-rendered after adding a pair over htmx.
    data = form_data(
        alice_version, market_type="futures", action="add_pair", **{"pairs-0-order_type": "limit"}
    )
    body = alice_client.post("/backtests/new/", data, HTTP_HX_REQUEST="true").content.decode()
    assert body.count('<div class="bt-futures">') == 2
    assert body.count('<div class="bt-limit">') == 2  # the new pair copies the order type


def test_add_and_remove_pair_over_htmx(alice_client, alice_version, candles):
    data = form_data(alice_version, action="add_pair")
    response = alice_client.post("/backtests/new/", data, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="pairs">')
    assert 'name="pairs-TOTAL_FORMS" value="2"' in body
    assert 'name="pairs-1-taker_fee" value="0.1"' in body  # settings carried over
    data = form_data(alice_version, action="remove_0")
    data |= {"pairs-TOTAL_FORMS": "2", "pairs-1-symbol": "BNB/USDT", "pairs-1-timeframe": "1h"}
    body = alice_client.post("/backtests/new/", data, HTTP_HX_REQUEST="true").content.decode()
    assert 'name="pairs-TOTAL_FORMS" value="1"' in body
    assert 'name="pairs-0-symbol" value="BNB/USDT"' in body


def test_the_detail_page_shows_aggregate_and_pairs(alice_client, done_task):
    body = alice_client.get(f"/backtests/{done_task.pk}/").content.decode()
    assert 'id="task-metrics"' in body and 'id="bt-chart-data"' in body
    for pair in done_task.pairs.all():
        assert f"/backtests/pairs/{pair.pk}/" in body
    assert "ws-connect" not in body  # finished: nothing live to watch


def test_a_running_task_shows_progress_cancel_and_live_wiring(
    alice_client, alice_version, candles, enqueued
):
    task = task_create(alice_version.strategy.owner, [pair_input(alice_version)], name="Queued")
    body = alice_client.get(f"/backtests/{task.pk}/").content.decode()
    assert f'ws-connect="/ws/backtests/{task.pk}/"' in body
    assert 'hx-trigger="every 2s, htmx:wsOpen from:body"' in body
    assert 'id="bt-cancel"' in body
    partial = alice_client.get(f"/backtests/{task.pk}/progress/").content.decode()
    assert partial.startswith('\n<div id="bt-progress"') or partial.lstrip().startswith(
        '<div id="bt-progress"'
    )
    response = alice_client.post(f"/backtests/{task.pk}/cancel/")
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.status == "cancelled"


def test_the_pair_page_has_chart_markers_metrics_and_sorted_trades(alice_client, done_task):
    pair = done_task.pairs.get(position=0)
    response = alice_client.get(f"/backtests/pairs/{pair.pk}/")
    body = response.content.decode()
    for label in (
        "Total return",
        "Annualised return",
        "Win rate",
        "Profit factor",
        "Max drawdown",
        "Sharpe",
        "Sortino",
        "Calmar",
        "Trades",
        "Average trade",
        "Fees paid",
        "Buy and hold",
    ):
        assert label in body
    payload = json.loads(
        body.split('id="bt-chart-data" type="application/json">')[1].split("</script>")[0]
    )
    trades = list(pair.trades.order_by("number"))
    assert len(payload["candles"]) == pair.result.candle_count
    assert sum(m["shape"] == "arrowUp" for m in payload["markers"]) == len(trades)
    assert len(payload["equity"]) == len(payload["drawdown"]) == pair.result.candle_count
    best = max(trades, key=lambda t: t.pnl)
    response = alice_client.get(f"/backtests/pairs/{pair.pk}/?sort=pnl&dir=desc")
    rows = response.content.decode().split('id="trade-table"')[1].split("<tbody>")[1]
    assert rows.split("</td>")[0].strip().endswith(f">{best.number}")


def test_the_csv_export_lists_every_trade_exactly(alice_client, done_task):
    pair = done_task.pairs.get(position=1)
    response = alice_client.get(f"/backtests/pairs/{pair.pk}/trades.csv")
    assert response["Content-Type"] == "text/csv"
    assert (
        "backtest-" in response["Content-Disposition"]
        and "BNB-USDT-1h" in response["Content-Disposition"]
    )
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    trades = list(pair.trades.order_by("number"))
    assert len(rows) == len(trades) > 0
    first, trade = rows[0], trades[0]
    assert first["entry_time"] == trade.entry_time.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert float(first["pnl"]) == trade.pnl and float(first["size"]) == trade.size
    assert first["exit_reason"] == trade.exit_reason


def test_charlie_gets_404_on_pages_and_csv(charlie_client, done_task):
    pair = done_task.pairs.first()
    for url in (
        f"/backtests/{done_task.pk}/",
        f"/backtests/{done_task.pk}/progress/",
        f"/backtests/pairs/{pair.pk}/",
        f"/backtests/pairs/{pair.pk}/trades.csv",
        f"/api/backtests/{done_task.pk}/",
    ):
        assert charlie_client.get(url).status_code == 404, url
    queued = BacktestTask.objects.filter(pk=done_task.pk)
    queued.update(status="running")
    assert charlie_client.post(f"/backtests/{done_task.pk}/cancel/").status_code == 404
    assert queued.get().status == "running"


def test_the_api_creates_and_names_bad_fields(
    alice_client,
    alice_version,
    charlie_version,
    candles,
    enqueued,
    django_capture_on_commit_callbacks,
):
    body = {
        "name": "API run",
        "start": "2020-09-01T00:00:00Z",
        "end": "2021-03-01T00:00:00Z",
        "pairs": [
            {"symbol": "BTC/USDT", "timeframe": "1h", "strategy_version": alice_version.pk},
            {
                "symbol": "BNB/USDT",
                "timeframe": "1h",
                "strategy_version": charlie_version.pk,
                "taker_fee": "0.5",
            },
        ],
    }
    response = alice_client.post("/api/backtests/", body, content_type="application/json")
    assert response.status_code == 400
    errors = response.json()
    assert "strategy version" in errors["pairs[1].strategy_version"][0]
    assert "fee" in errors["pairs[1].taker_fee"][0]
    body["pairs"][1] = {
        "symbol": "BNB/USDT",
        "timeframe": "1h",
        "strategy_version": alice_version.pk,
    }
    body["pairs"][1]["leverage"] = "3"
    response = alice_client.post("/api/backtests/", body, content_type="application/json")
    assert response.json() == {
        "pairs[1].leverage": ["leverage above 1 needs a futures market; spot trades your own cash"]
    }
    del body["pairs"][1]["leverage"]
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post("/api/backtests/", body, content_type="application/json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["status"] == "queued" and len(created["pairs"]) == 2
    assert created["pairs"][0]["taker_fee"] == "0.00100000"
    assert (created["pairs"][0]["leverage"], created["pairs"][0]["direction"]) == ("1.00", "long")
    assert enqueued == [((created["id"],), BacktestTask.objects.get().celery_task_id)]


def test_the_api_creates_a_futures_task_and_returns_its_settings(
    alice_client, alice_version, candles, enqueued
):
    pair = {
        "symbol": "BTC/USDT",
        "timeframe": "1h",
        "strategy_version": alice_version.pk,
        "order_type": "limit",
        "limit_offset": "0.001",
        "leverage": "20",
        "direction": "short",
        "funding_rate": "-0.0003",
        "maintenance_margin": "0.004",
    }
    body = {
        "name": "Futures",
        "market_type": "futures",
        "start": "2020-09-01T00:00:00Z",
        "end": "2021-03-01T00:00:00Z",
        "pairs": [pair],
    }
    response = alice_client.post("/api/backtests/", body, content_type="application/json")
    assert response.status_code == 201, response.json()
    returned = alice_client.get(f"/api/backtests/{response.json()['id']}/").json()["pairs"][0]
    assert {key: returned[key] for key in pair if key not in ("symbol", "strategy_version")} == {
        "timeframe": "1h",
        "order_type": "limit",
        "limit_offset": "0.00100000",
        "leverage": "20.00",
        "direction": "short",
        "funding_rate": "-0.00030000",
        "maintenance_margin": "0.00400000",
    }
    body["pairs"][0]["leverage"] = "200"
    response = alice_client.post("/api/backtests/", body, content_type="application/json")
    assert response.status_code == 400
    assert "leverage must be between 1 and 125" in response.json()["pairs[0].leverage"][0]


def test_the_api_returns_status_and_results(alice_client, done_task):
    data = alice_client.get(f"/api/backtests/{done_task.pk}/").json()
    assert data["status"] == "done" and data["progress"] == 100
    assert data["metrics"]["trade_count"] == sum(p["metrics"]["trade_count"] for p in data["pairs"])
    listing = alice_client.get("/api/backtests/").json()
    assert [t["id"] for t in listing["results"]] == [done_task.pk]


def test_the_admin_shows_tasks_with_pairs_inline_read_only(client, done_task):
    from tests.factories import UserFactory

    staff = UserFactory(email="ops@example.com", is_staff=True, is_superuser=True)
    client.force_login(staff)
    assert client.get("/admin/backtests/backtesttask/").status_code == 200
    page = client.get(f"/admin/backtests/backtesttask/{done_task.pk}/change/").content.decode()
    assert "BTC/USDT" in page and "BNB/USDT" in page
    assert 'name="name"' not in page  # read-only: no inputs
    pair = done_task.pairs.first()
    assert client.get(f"/admin/backtests/backtestpair/{pair.pk}/change/").status_code == 200
    assert (
        client.get(f"/admin/backtests/backtestresult/{pair.result.pk}/change/").status_code == 200
    )
