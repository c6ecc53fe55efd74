"""Signal backtest: recorded alerts replayed through the engine's event path (each alert
acts at the close of the bar it arrived in and fills at the next bar's open), run as a
backtests-app task on a recorded-alerts strategy version, with its results page."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pytest
from celery import current_app
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.backtests.models import BacktestTask
from apps.backtests.services import BacktestInvalid
from apps.backtests.tasks import backtest_task_run
from apps.engine.candles import CandleArrays
from apps.engine.decide import build_strategy
from apps.engine.event_book import EventConfig
from apps.engine.events import run_events
from apps.engine.simulator import ExecutionConfig
from apps.engine.strategies.base import EventSpec
from apps.engine.strategies.recorded import (
    RecordedSignal,
    RecordedSignalsStrategy,
    recorded_signals_from_params,
)
from apps.market.selectors import candles_load
from apps.signals.models import WebhookEvent
from apps.strategies.models import Strategy, StrategyVersion
from tests.apps.backtests.conftest import import_pair_candles, pair_input, task_create
from tests.apps.signals.conftest import make_signal_bot


def hourly(opens: list[float]) -> CandleArrays:
    start = np.datetime64("2024-01-01T00:00", "ns")
    times = np.array([start + np.timedelta64(h, "h") for h in range(len(opens))])
    prices = np.array(opens, dtype=float)
    return CandleArrays(times, prices, prices + 1, prices - 1, prices, np.ones(len(opens)))


def at(hour: int, minute: int) -> datetime:
    return datetime(2024, 1, 1, hour, minute, tzinfo=UTC)


def test_alerts_fill_at_the_next_bar_open():
    candles = hourly([100, 101, 102, 103, 104, 105, 106])
    signals = [
        RecordedSignal(at(1, 30), "buy", "quote", 1000.0),
        RecordedSignal(at(4, 59), "close"),
        RecordedSignal(at(9, 0), "buy"),  # after the last bar: outside the replay
    ]
    result = run_events(RecordedSignalsStrategy(signals), candles, EventConfig(ExecutionConfig()))
    (trade,) = result.trades
    assert (trade.entry_index, trade.entry_price) == (2, 102.0)
    assert (trade.exit_index, trade.exit_price) == (5, 105.0)
    assert trade.size == pytest.approx(1000 / 102)


def test_a_sell_without_a_position_does_nothing_and_contracts_are_base_units():
    candles = hourly([100, 100, 100, 110, 110])
    signals = [
        RecordedSignal(at(0, 10), "sell"),
        RecordedSignal(at(1, 10), "buy", "contracts", 2.0),
        RecordedSignal(at(2, 10), "sell", "contracts", 1.0),
    ]
    result = run_events(RecordedSignalsStrategy(signals), candles, EventConfig(ExecutionConfig()))
    assert [(t.entry_index, t.exit_index, t.size) for t in result.trades] == [
        (2, 3, 1.0),
        (2, None, 1.0),
    ]


def test_bad_recorded_signals_are_refused():
    with pytest.raises(ValueError, match="action"):
        RecordedSignal(at(0, 0), "hold")
    with pytest.raises(ValueError, match="tz-aware"):
        RecordedSignal(datetime(2024, 1, 1), "buy")


def test_the_recorded_event_spec_builds_the_strategy_from_json_alerts():
    alerts = [
        {
            "time": "2024-01-01T01:30:00+00:00",
            "action": "buy",
            "size_mode": "quote",
            "size": "1000",
        },
        {"time": "2024-01-01T04:59:00+00:00", "action": "close", "size_mode": "", "size": None},
    ]
    candles = hourly([100, 101, 102, 103, 104, 105, 106])
    config = EventConfig(ExecutionConfig())
    built = run_events(build_strategy(EventSpec("recorded", {"alerts": alerts})), candles, config)
    direct = run_events(
        RecordedSignalsStrategy(
            [RecordedSignal(at(1, 30), "buy", "quote", 1000.0), RecordedSignal(at(4, 59), "close")]
        ),
        candles,
        config,
    )
    assert built.trades == direct.trades and len(built.trades) == 1
    with pytest.raises(ValueError, match=r"alerts\[0\]"):
        recorded_signals_from_params({"alerts": [{"time": "2024-01-01T00:00", "action": "buy"}]})
    with pytest.raises(ValueError, match="alerts must be a list"):
        recorded_signals_from_params({})


# Accepted alerts (symbol, alert time or None for "no {{timenow}}", received, action, size).
ALERTS = [
    ("BTC/USDT", datetime(2020, 9, 10, 5, 20), "buy", "quote", Decimal(500)),
    ("BTC/USDT", datetime(2020, 9, 12, 13, 59), "close", "", None),
    ("BNB/USDT", datetime(2020, 9, 15, 8, 30), "buy", "contracts", Decimal(10)),
    ("BTC/USDT", None, "buy", "", None),  # received 2020-10-01 10:05, no alert time
    ("BNB/USDT", datetime(2020, 9, 20, 12, 0), "close", "", None),
    ("BTC/USDT", datetime(2020, 10, 3, 16, 45), "sell", "equity_pct", Decimal(50)),
]
RECEIVED_WITHOUT_TIME = datetime(2020, 10, 1, 10, 5, tzinfo=UTC)
FORM = {"exchange": "binance", "timeframe": "1h", "initial_capital": "10000", "taker_fee": "0.1"}


def record_alerts(bot, alerts=ALERTS) -> None:
    for number, (symbol, moment, action, size_mode, size) in enumerate(alerts):
        when = RECEIVED_WITHOUT_TIME if moment is None else moment.replace(tzinfo=UTC)
        WebhookEvent.objects.create(
            bot=bot,
            key=f"{bot.pk}-{number}-{when.timestamp()}",
            status="accepted",
            action=action,
            symbol=symbol,
            size_mode=size_mode,
            size=size,
            alert_time=None if moment is None else when,
            received_at=when,
        )
    # A rejection is never replayed.
    WebhookEvent.objects.create(
        bot=bot, status="rejected", action="buy", symbol="BTC/USDT", received_at=datetime.now(UTC)
    )


def expected_signals(symbol: str) -> list[RecordedSignal]:
    """The alerts of `symbol` as the engine takes them, written out independently."""
    return [
        RecordedSignal(
            time=RECEIVED_WITHOUT_TIME if moment is None else moment.replace(tzinfo=UTC),
            action=action,
            size_mode=size_mode,
            size=None if size is None else float(size),
        )
        for item_symbol, moment, action, size_mode, size in ALERTS
        if item_symbol == symbol
    ]


def chart_payload(html: str) -> dict:
    return json.loads(
        html.split('id="bt-chart-data" type="application/json">')[1].split("</script>")[0]
    )


@pytest.fixture
def signal_bot(alice):
    bot, _secrets = make_signal_bot(alice, symbols=("BTC/USDT", "BNB/USDT"))
    return bot


@pytest.mark.django_db
def test_backtest_these_alerts_runs_them_on_the_backtests_results_page(
    alice,
    alice_client,
    signal_bot,
    enqueued,
    pushes,
    django_capture_on_commit_callbacks,
):
    import_pair_candles()
    record_alerts(signal_bot)
    url = reverse("signals:backtest", args=[signal_bot.pk])
    page = alice_client.get(url).content.decode()
    assert page.count('class="recorded-symbol"') == 2 and 'id="no-backtest"' in page
    assert '<option value="1h" selected>' in page  # hourly candles unless chosen otherwise
    assert not BacktestTask.objects.exists()  # a GET never creates one

    form = FORM | {"initial_capital": "5000", "taker_fee": "0.2"}
    with django_capture_on_commit_callbacks(execute=True):
        posted = alice_client.post(url, form)
    task = BacktestTask.objects.get()
    assert posted.status_code == 302 and posted.url == reverse("backtests:detail", args=[task.pk])
    assert [args for args, _id in enqueued] == [(task.pk,)]
    route = current_app.amqp.router.route({}, "apps.backtests.tasks.backtest_task_run", (task.pk,))
    assert route["queue"].name == "backtests"

    # One immutable snapshot: a recorded-alerts version of the bot's own strategy.
    version = StrategyVersion.objects.get()
    assert (version.kind, version.strategy.signal_bot, version.strategy.owner) == (
        "recorded",
        signal_bot,
        alice,
    )
    assert version.strategy.name == f"Recorded alerts of {signal_bot.name}"
    assert {s: len(a) for s, a in version.params["alerts"].items()} == {
        "BNB/USDT": 2,
        "BTC/USDT": 4,
    }
    pairs = list(task.pairs.order_by("position"))
    assert [(p.symbol, p.timeframe, p.strategy_version_id) for p in pairs] == [
        ("BNB/USDT", "1h", version.pk),
        ("BTC/USDT", "1h", version.pk),
    ]
    assert {(p.initial_capital, p.taker_fee, p.maker_fee) for p in pairs} == {
        (Decimal(5000), Decimal("0.002"), Decimal("0.002"))
    }
    assert task.start <= datetime(2020, 9, 10, 5, 20, tzinfo=UTC) < task.end
    assert task.end > datetime(2020, 10, 3, 17, tzinfo=UTC)
    assert AuditEvent.objects.filter(event_type="strategy.version_created").count() == 1
    assert AuditEvent.objects.filter(event_type="backtests.task_created").count() == 1

    # The worker runs it as any backtest: the same trades as the engine on the alerts.
    with django_capture_on_commit_callbacks(execute=True):
        assert backtest_task_run(task.pk) is True
    task.refresh_from_db()
    assert (task.status, task.progress, task.error) == ("done", 100, "")
    config = EventConfig(ExecutionConfig(cash=5000, fee=0.002), maker_fee=0.002, taker_fee=0.002)
    for pair in pairs:
        candles = candles_load(
            exchange="binance", symbol=pair.symbol, timeframe="1h", start=task.start, end=task.end
        )
        expected = run_events(
            RecordedSignalsStrategy(expected_signals(pair.symbol)), candles, config
        )
        stored = list(pair.trades.order_by("number"))
        assert len(stored) == len(expected.trades) >= 1
        for row, want in zip(stored, expected.trades, strict=True):
            assert (row.entry_price, row.exit_price) == (want.entry_price, want.exit_price)
            assert (row.size, row.pnl, row.exit_reason) == (want.size, want.pnl, want.exit_reason)
        assert pair.result.metrics["final_equity"] == pytest.approx(
            expected.final_equity, rel=1e-12
        )
    assert pushes[-1]["status"] == "done"

    # The results page: K-line chart with a marker at each fill, equity and drawdown, CSV.
    btc = pairs[1]
    first = btc.trades.get(number=1)
    assert first.entry_time == datetime(2020, 9, 10, 6, tzinfo=UTC)  # the next bar's open
    assert first.exit_time == datetime(2020, 9, 12, 14, tzinfo=UTC)
    html = alice_client.get(reverse("backtests:pair_detail", args=[btc.pk])).content.decode()
    payload = chart_payload(html)
    assert len(payload["candles"]) == btc.result.candle_count
    assert len(payload["equity"]) == len(payload["drawdown"]) == btc.result.candle_count
    entries = [m["time"] for m in payload["markers"] if m["shape"] == "arrowUp"]
    assert int(first.entry_time.timestamp()) in entries
    assert len(entries) == btc.trades.count()
    csv = b"".join(alice_client.get(reverse("backtests:pair_trades_csv", args=[btc.pk])))
    assert csv.decode().count("\n") == btc.trades.count() + 1
    assert "2020-09-10T06:00:00Z" in csv.decode()
    listed = alice_client.get(url).content.decode()
    assert 'name="initial_capital" value="5000' in listed  # the last backtest's settings
    assert 'name="taker_fee" value="0.2"' in listed
    assert (
        reverse("backtests:detail", args=[task.pk]) in listed and 'id="no-backtest"' not in listed
    )


@pytest.mark.django_db
def test_the_same_alerts_reuse_their_snapshot_and_a_new_alert_makes_a_new_version(
    alice_client, signal_bot, enqueued, django_capture_on_commit_callbacks
):
    import_pair_candles()
    record_alerts(signal_bot)
    url = reverse("signals:backtest", args=[signal_bot.pk])
    with django_capture_on_commit_callbacks(execute=True):
        assert alice_client.post(url, FORM).status_code == 302
        assert alice_client.post(url, FORM).status_code == 302
    assert StrategyVersion.objects.count() == 1 and BacktestTask.objects.count() == 2
    record_alerts(signal_bot, [("BTC/USDT", datetime(2020, 11, 2, 9, 0), "buy", "", None)])
    with django_capture_on_commit_callbacks(execute=True):
        assert alice_client.post(url, FORM).status_code == 302
    latest = StrategyVersion.objects.order_by("-number").first()
    assert (Strategy.objects.count(), latest.number) == (1, 2)
    assert len(latest.params["alerts"]["BTC/USDT"]) == 5
    # The first snapshot is unchanged: the first backtests still replay what they replayed.
    assert len(StrategyVersion.objects.get(number=1).params["alerts"]["BTC/USDT"]) == 4


@pytest.mark.django_db
def test_without_alerts_the_page_says_so_and_creates_nothing(alice_client, signal_bot, enqueued):
    url = reverse("signals:backtest", args=[signal_bot.pk])
    assert b'id="no-alerts"' in alice_client.get(url).content
    WebhookEvent.objects.create(  # a rejection is not an alert to replay
        bot=signal_bot, status="rejected", received_at=datetime.now(UTC)
    )
    posted = alice_client.post(url, FORM)
    assert posted.status_code == 400
    assert b'id="backtest-error"' in posted.content and b"no accepted alerts yet" in posted.content
    assert not Strategy.objects.exists() and not BacktestTask.objects.exists() and not enqueued


@pytest.mark.django_db
def test_missing_candles_get_the_backtests_apps_error_and_bad_input_names_its_field(
    alice_client, signal_bot, enqueued
):
    record_alerts(signal_bot)
    url = reverse("signals:backtest", args=[signal_bot.pk])
    posted = alice_client.post(url, FORM)
    assert posted.status_code == 400
    html = posted.content.decode()
    assert "no candles for BNB/USDT 1h on binance" in html
    assert "no candles for BTC/USDT 1h on binance" in html and "import them" in html
    assert not BacktestTask.objects.exists() and not enqueued

    bad = alice_client.post(url, FORM | {"timeframe": "7x", "taker_fee": "-1"})
    assert bad.status_code == 400
    assert b'data-field="timeframe"' in bad.content and b'data-field="taker_fee"' in bad.content
    assert not BacktestTask.objects.exists()


@pytest.mark.django_db
def test_another_user_cannot_see_or_backtest_the_alerts(
    alice,
    alice_client,
    charlie,
    charlie_client,
    signal_bot,
    enqueued,
    django_capture_on_commit_callbacks,
):
    import_pair_candles()
    record_alerts(signal_bot)
    url = reverse("signals:backtest", args=[signal_bot.pk])
    assert charlie_client.get(url).status_code == 404
    assert charlie_client.post(url, FORM).status_code == 404
    assert not StrategyVersion.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(url, FORM)
    version = StrategyVersion.objects.get()
    task = BacktestTask.objects.get()
    for name, args in (
        ("strategies:detail", [version.strategy_id]),
        ("strategies:version_detail", [version.pk]),
        ("backtests:detail", [task.pk]),
    ):
        assert charlie_client.get(reverse(name, args=args)).status_code == 404
    assert version.strategy not in Strategy.objects.filter(owner=charlie)
    # Charlie cannot backtest Alice's snapshot by its id either.
    with pytest.raises(BacktestInvalid) as refused:
        task_create(charlie, [pair_input(version)], start=task.start, end=task.end)
    assert refused.value.field == "pairs[0].strategy_version"
    assert "not found" in refused.value.message
