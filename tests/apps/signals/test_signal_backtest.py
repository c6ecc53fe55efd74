"""Signal backtest: recorded alerts replayed through the engine's event path; each alert
acts at the close of the bar it arrived in and fills at the next bar's open."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.engine.candles import CandleArrays
from apps.engine.event_book import EventConfig
from apps.engine.events import run_events
from apps.engine.simulator import ExecutionConfig
from apps.engine.strategies.recorded import RecordedSignal, RecordedSignalsStrategy
from apps.market.services import candles_import_csv
from apps.signals.models import SignalBacktestRun, WebhookEvent
from tests.apps.signals.conftest import make_signal_bot

DATA = Path(__file__).resolve().parents[3] / "data" / "candles"


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


@pytest.fixture
def backtests_queued(monkeypatch):
    """(run id, queue) of every signal backtest sent; `run_backtests` runs them as the
    worker would."""
    from apps.signals import tasks

    sent: list[tuple[int, str]] = []
    monkeypatch.setattr(
        tasks.signal_backtest_run,
        "apply_async",
        lambda args, queue: sent.append((args[0], queue)),
    )
    return sent


def run_backtests(sent: list[tuple[int, str]]) -> None:
    from apps.signals.backtest import signal_backtest_execute

    for run_id, _queue in sent:
        assert signal_backtest_execute(run_id=run_id) is True
        assert signal_backtest_execute(run_id=run_id) is False  # a redelivery does nothing
    sent.clear()


def record_alerts(bot) -> None:
    for moment, action, size in (
        (datetime(2020, 9, 10, 5, 20, tzinfo=UTC), "buy", Decimal(500)),
        (datetime(2020, 9, 12, 13, 59, tzinfo=UTC), "close", None),
    ):
        WebhookEvent.objects.create(
            bot=bot,
            key=f"k{moment.timestamp()}",
            status="accepted",
            action=action,
            symbol="BTC/USDT",
            size_mode="quote" if size else "",
            size=size,
            alert_time=moment,
            received_at=moment,
        )
    WebhookEvent.objects.create(bot=bot, status="rejected", received_at=datetime.now(UTC))


@pytest.mark.django_db
def test_the_signal_backtest_runs_on_a_worker_and_the_page_shows_it(
    alice,
    alice_client,
    charlie_client,
    backtests_queued,
    django_capture_on_commit_callbacks,
):
    candles_import_csv(
        path=DATA / "BTC-USDT_1h.csv", exchange="binance", symbol="BTC/USDT", timeframe="1h"
    )
    bot, _secrets = make_signal_bot(alice)
    record_alerts(bot)
    url = reverse("signals:backtest", args=[bot.pk])
    assert b'id="no-backtest"' in alice_client.get(url, {"timeframe": "1h"}).content
    assert not SignalBacktestRun.objects.exists()  # a GET never runs one

    with django_capture_on_commit_callbacks(execute=True):
        posted = alice_client.post(url, {"exchange": "binance", "timeframe": "1h"})
    assert posted.status_code == 302
    run = SignalBacktestRun.objects.get()
    assert backtests_queued == [(run.pk, "backtests")]
    waiting = alice_client.get(url, {"partial": "run"}, HTTP_HX_REQUEST="true").content.decode()
    assert 'id="backtest-progress"' in waiting and 'hx-trigger="every 2s"' in waiting
    assert "<html" not in waiting

    run_backtests(backtests_queued)
    page = alice_client.get(url)
    html = page.content.decode()
    assert page.status_code == 200 and "hx-trigger" not in html
    assert html.count('class="signal-trade"') == 1
    assert "2020-09-10T06:00:00Z" in html and "2020-09-12T14:00:00Z" in html
    assert "Alerts / candles" in html
    run.refresh_from_db()
    assert (run.status, run.progress) == ("done", 100)
    started = AuditEvent.objects.get(event_type="signals.backtest_started")
    assert started.data["run"] == run.pk
    assert charlie_client.get(url).status_code == 404
    assert charlie_client.post(url, {"timeframe": "1h"}).status_code == 404


@pytest.mark.django_db
def test_without_candles_the_page_says_so(alice, alice_client, backtests_queued):
    bot, _secrets = make_signal_bot(alice)
    WebhookEvent.objects.create(
        bot=bot,
        key="k",
        status="accepted",
        action="buy",
        symbol="BTC/USDT",
        received_at=datetime(2020, 1, 1, tzinfo=UTC),
    )
    url = reverse("signals:backtest", args=[bot.pk])
    alice_client.post(url, {"timeframe": "1h"})
    run_backtests([(SignalBacktestRun.objects.get().pk, "backtests")])
    assert b"No stored 1h candles" in alice_client.get(url).content
    bad = alice_client.post(url, {"timeframe": "7x"})
    assert bad.status_code == 400 and b'id="backtest-error" data-field="timeframe"' in bad.content
    assert SignalBacktestRun.objects.count() == 1


@pytest.mark.django_db
def test_a_run_whose_worker_died_stops_polling_and_says_so(alice, alice_client):
    bot, _secrets = make_signal_bot(alice)
    run = SignalBacktestRun.objects.create(
        bot=bot, exchange="binance", timeframe="1h", status="running"
    )
    url = reverse("signals:backtest", args=[bot.pk])
    assert b'hx-trigger="every 2s"' in alice_client.get(url).content
    quiet = timedelta(seconds=SignalBacktestRun.TIME_LIMIT_SECONDS + 1)
    SignalBacktestRun.objects.filter(pk=run.pk).update(updated_at=timezone.now() - quiet)
    page = alice_client.get(url).content
    assert b'id="backtest-stalled"' in page and b"hx-trigger" not in page
