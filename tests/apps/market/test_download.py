"""Candle download through the REAL ccxt client against the loopback fake exchange.

The fake serves the shipped BTC-USDT_1h.csv on Binance `GET /api/v3/klines` and Bybit
`GET /v5/market/kline`; the task function is called directly (no Celery), and its waits
are recorded instead of slept.
"""

from datetime import UTC, datetime

import numpy as np
import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.common.errors import ApplicationError
from apps.engine.candles import read_csv
from apps.market import download as download_module
from apps.market.download import candle_download_resume, candle_download_run, candle_download_start
from apps.market.models import CandleDownload
from apps.market.selectors import candles_load
from tests.fakes.exchange import run_fake_exchange

from .conftest import DATA

CSV = DATA / "BTC-USDT_1h.csv"
# Three months without a gap in the file: 2,160 hourly candles, three pages of at most 1,000.
START = datetime(2018, 1, 1, tzinfo=UTC)
END = datetime(2018, 4, 1, tzinfo=UTC)
HOUR_MS = 3_600_000


def ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


@pytest.fixture
def fake_exchange(settings):
    with run_fake_exchange() as fake:
        fake.klines_load("BTCUSDT", CSV, "1h")
        settings.EXCHANGE_BASE_URL_OVERRIDE = fake.base_url
        settings.EXCHANGE_TIMEOUT_MS = 5_000
        yield fake


@pytest.fixture
def waits(monkeypatch):
    """The pauses the download asked for, in seconds, instead of sleeping them."""
    asked: list[float] = []
    monkeypatch.setattr(download_module, "sleep", asked.append)
    return asked


def expected_candles():
    candles = read_csv(CSV)
    keep = (candles.time >= np.datetime64("2018-01-01")) & (
        candles.time < np.datetime64("2018-04-01")
    )
    return keep, candles


def assert_stored_equals_csv(exchange: str, *, missing: tuple[datetime, datetime] | None = None):
    keep, source = expected_candles()
    if missing:
        first, last = (np.datetime64(value.replace(tzinfo=None), "ns") for value in missing)
        keep &= ~((source.time >= first) & (source.time <= last))
    stored = candles_load(exchange=exchange, symbol="BTC/USDT", timeframe="1h")
    assert len(stored) == int(keep.sum())
    np.testing.assert_array_equal(stored.time, source.time[keep])
    for name in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(stored.field(name), source.field(name)[keep])


def start(owner, exchange="binance", **overrides):
    fields = {
        "exchange": exchange,
        "symbol": "BTC/USDT",
        "timeframe": "1h",
        "start": START,
        "end": END,
    }
    fields.update(overrides)
    return candle_download_start(owner=owner, **fields)


def kline_since(request) -> int:
    query = request.query
    return int((query.get("startTime") or query.get("start"))[0])


@pytest.mark.parametrize("exchange", ["binance", "bybit"])
def test_full_download_stores_exactly_the_exchange_candles(alice, fake_exchange, waits, exchange):
    download = start(alice, exchange)
    assert download.status == CandleDownload.Status.QUEUED

    assert candle_download_run(download_id=download.pk) is True

    download.refresh_from_db()
    assert download.status == CandleDownload.Status.DONE, download.error
    assert (download.pages, download.candles_stored, download.gaps_found) == (3, 2160, 0)
    assert download.progress == 100.0
    assert_stored_equals_csv(exchange)
    # Three pages, each starting where the previous one ended.
    sinces = [kline_since(request) for request in fake_exchange.kline_requests()]
    assert sinces == [ms(START), ms(START) + 1000 * HOUR_MS, ms(START) + 2000 * HOUR_MS]
    sources = AuditEvent.objects.filter(event_type="market.candles_downloaded")
    assert {event.data["source"] for event in sources} == {f"ccxt:{exchange}"}
    assert waits == []
    # A finished download is not run twice.
    assert candle_download_run(download_id=download.pk) is False


@pytest.mark.parametrize("exchange", ["binance", "bybit"])
def test_rate_limit_burst_waits_for_retry_after_and_completes(
    alice, fake_exchange, waits, exchange
):
    fake_exchange.kline_rate_limit = 3
    fake_exchange.kline_retry_after = 7
    download = start(alice, exchange)

    candle_download_run(download_id=download.pk)

    download.refresh_from_db()
    assert download.status == CandleDownload.Status.DONE, download.error
    assert waits == [7.0, 7.0, 7.0]
    assert len(fake_exchange.kline_requests()) == 3 + 3
    assert_stored_equals_csv(exchange)


def test_a_gap_in_the_exchange_data_is_reported_not_filled(alice, fake_exchange, waits):
    first, last = datetime(2018, 2, 1, tzinfo=UTC), datetime(2018, 2, 1, 5, tzinfo=UTC)
    fake_exchange.kline_gap = (ms(first), ms(last))
    download = start(alice)

    candle_download_run(download_id=download.pk)

    download.refresh_from_db()
    assert download.status == CandleDownload.Status.DONE
    assert download.gaps_found == 1
    assert download.gaps == [["2018-02-01T00:00:00Z", "2018-02-01T05:00:00Z", 6]]
    assert download.candles_stored == 2160 - 6
    assert_stored_equals_csv("binance", missing=(first, last))


@pytest.mark.parametrize("exchange", ["binance", "bybit"])
def test_failure_midway_then_resume_fetches_no_stored_page_again(
    alice, fake_exchange, waits, exchange
):
    fake_exchange.kline_fail_after = 1
    download = start(alice, exchange)

    candle_download_run(download_id=download.pk)

    download.refresh_from_db()
    assert download.status == CandleDownload.Status.FAILED
    assert download.error.startswith("The exchange could not serve the candles")
    assert "Gave up after 4 attempts at the page from 2018-02-11T16:00:00Z" in download.error
    assert "1000 candles stored so far, up to 2018-02-11T15:00:00Z" in download.error
    assert waits == [1.0, 2.0, 4.0]
    assert download.candles_stored == 1000
    first_run = len(fake_exchange.kline_requests())
    assert first_run == 1 + 4

    fake_exchange.kline_fail_after = None
    candle_download_resume(download=download, acting_user=alice)
    candle_download_run(download_id=download.pk)

    download.refresh_from_db()
    assert download.status == CandleDownload.Status.DONE, download.error
    assert download.error == ""
    assert download.candles_stored == 2160
    resumed = [kline_since(request) for request in fake_exchange.kline_requests()[first_run:]]
    # Straight from the last stored candle plus one hour: the stored page is not asked again.
    assert resumed == [ms(START) + 1000 * HOUR_MS, ms(START) + 2000 * HOUR_MS]
    assert_stored_equals_csv(exchange)


def test_a_symbol_the_exchange_does_not_list_fails_clearly(alice, fake_exchange, waits):
    download = start(alice, symbol="DOGE/USDT")

    candle_download_run(download_id=download.pk)

    download.refresh_from_db()
    assert download.status == CandleDownload.Status.FAILED
    assert download.error.startswith("binance does not list DOGE/USDT.")
    assert fake_exchange.kline_requests() == []


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"exchange": "nosuchx"}, "exchange", "ccxt has no exchange"),
        ({"exchange": "kraken"}, "exchange", "not supported"),
        ({"symbol": "BTCUSDT"}, "symbol", "BASE/QUOTE"),
        ({"timeframe": "7h"}, "timeframe", "7h"),
        ({"timeframe": "1M"}, "timeframe", "monthly"),
        ({"start": None}, "start", "required"),
        ({"end": START}, "end", "after start"),
        ({"end": datetime(2999, 1, 1, tzinfo=UTC)}, "end", "future"),
        ({"start": datetime(2001, 1, 1, tzinfo=UTC)}, "start", "on or after"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(alice, overrides, field, words):
    with pytest.raises(ApplicationError) as caught:
        start(alice, **overrides)
    assert caught.value.field == field
    assert words in caught.value.message
    assert not CandleDownload.objects.exists()
    assert not AuditEvent.objects.filter(event_type__startswith="market.download").exists()


def test_form_starts_a_download_and_the_page_polls_its_progress(alice_client, alice):
    response = alice_client.post(
        reverse("market:download_start"),
        {
            "exchange": "bybit",
            "symbol": "btc/usdt",
            "timeframe": "1h",
            "start": "2018-01-01T00:00",
            "end": "2018-04-01T00:00",
        },
    )
    assert response.status_code == 302
    download = CandleDownload.objects.get(owner=alice)
    assert (download.exchange, download.symbol, download.start) == ("bybit", "BTC/USDT", START)
    page = alice_client.get(reverse("market:coverage")).content.decode()
    progress_url = reverse("market:download_progress", args=[download.pk])
    assert f'hx-get="{progress_url}"' in page
    assert 'hx-trigger="every 2s"' in page
    partial = alice_client.get(progress_url).content.decode()
    assert "Queued" in partial


def test_form_error_names_the_field_and_writes_nothing(alice_client):
    response = alice_client.post(
        reverse("market:download_start"),
        {
            "exchange": "kraken",
            "symbol": "BTC/USDT",
            "timeframe": "1h",
            "start": "2018-01-01T00:00",
            "end": "2018-04-01T00:00",
        },
    )
    assert response.status_code == 400
    assert "not supported" in response.content.decode()
    assert not CandleDownload.objects.exists()


def test_charlie_cannot_see_alices_download(alice, charlie_client, alice_client):
    download = start(alice)
    progress_url = reverse("market:download_progress", args=[download.pk])
    resume_url = reverse("market:download_resume", args=[download.pk])

    assert alice_client.get(progress_url).status_code == 200
    assert charlie_client.get(progress_url).status_code == 404
    assert charlie_client.post(resume_url).status_code == 404
    assert progress_url not in charlie_client.get(reverse("market:coverage")).content.decode()
