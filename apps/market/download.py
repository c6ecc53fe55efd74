"""Candle download from an exchange through ccxt `fetch_ohlcv`: start, resume, run.

`candle_download_start` checks the request and writes a `CandleDownload` row; the Celery
task (apps/market/tasks.py) then calls `candle_download_run`, which pages through the
range window by window:

* each page asks for at most `PAGE_LIMIT` candles opening in [since, since + limit steps),
  so an exchange that answers with the newest candles first (Bybit) still pages forward;
* every page goes to `candles_store` with `source="ccxt:<exchange>"` and commits on its
  own, so a run that dies keeps what it stored, and the next run starts from the last
  stored candle in the range plus one step: no stored page is fetched again;
* ccxt's own throttle (enableRateLimit) spaces the calls; a 429 / RateLimitExceeded /
  DDoSProtection waits for the exchange's Retry-After and tries the same page again, and
  other network failures are retried `NETWORK_ATTEMPTS` times with a growing pause;
* only closed candles are stored (the exchange also sends the one still forming);
* afterwards the coverage selector reports every gap inside the range: candles the
  exchange does not have are reported, never invented.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.common.errors import ApplicationError
from apps.common.timefmt import utc_text
from apps.engine.brokers import ccxt_live
from apps.engine.candles import CandleArrays
from apps.engine.timeframes import Timeframe
from apps.exchanges.clients import client_spec, exchange_client
from apps.market.models import CandleDownload, CandleSeries
from apps.market.selectors import candle_series_coverage
from apps.market.services import candles_store, series_key_clean

logger = logging.getLogger(__name__)

# Exchanges whose candle endpoints tradeloop pages through (and tests against the fake).
DOWNLOAD_EXCHANGE_IDS = ("binance", "bybit")
PAGE_LIMIT = 1000
NETWORK_ATTEMPTS = 4
RATE_LIMIT_WAITS = 20
DEFAULT_RETRY_AFTER = 5.0
MAX_RETRY_AFTER = 300.0
EARLIEST = datetime(2009, 1, 3, tzinfo=UTC)
MAX_CANDLES = 5_000_000

# How the task waits; tests replace it to see the waits without spending them.
sleep: Callable[[float], None] = time.sleep


def candle_download_list(*, owner: Any) -> list[CandleDownload]:
    return list(CandleDownload.objects.filter(owner=owner)[:20])


def candle_download_get(*, owner: Any, download_id: int) -> CandleDownload:
    """The owner's download; anyone else's raises CandleDownload.DoesNotExist (a 404)."""
    return CandleDownload.objects.get(owner=owner, pk=download_id)


def candle_download_start(
    *,
    owner: Any,
    exchange: str,
    symbol: str,
    timeframe: str,
    start: datetime | None,
    end: datetime | None,
) -> CandleDownload:
    """Check the request, write the download row and its audit event, queue the task.

    Every error is an ApplicationError naming the field; nothing is written then.
    """
    exchange = (exchange or "").strip().lower()
    if exchange not in ccxt_live.exchange_ids():
        raise ApplicationError(f"ccxt has no exchange {exchange!r}", field="exchange")
    if exchange not in DOWNLOAD_EXCHANGE_IDS:
        supported = ", ".join(DOWNLOAD_EXCHANGE_IDS)
        raise ApplicationError(
            f"downloading candles from {exchange} is not supported yet (only {supported})",
            field="exchange",
        )
    exchange, symbol, parsed = series_key_clean(
        exchange=exchange, symbol=symbol, timeframe=timeframe
    )
    _timeframe_check(exchange=exchange, timeframe=parsed)
    start, end = _range_check(start=start, end=end, timeframe=parsed)
    with transaction.atomic():
        download = CandleDownload.objects.create(
            owner=owner,
            exchange=exchange,
            symbol=symbol,
            timeframe=parsed.code,
            start=start,
            end=end,
        )
        audit_record(
            event_type="market.download_started",
            actor=owner,
            owner=owner,
            target=download,
            data={
                "exchange": exchange,
                "symbol": symbol,
                "timeframe": parsed.code,
                "start": utc_text(start),
                "end": utc_text(end),
            },
        )
        transaction.on_commit(partial(_enqueue, download.pk))
    return download


def candle_download_resume(*, download: CandleDownload, acting_user: Any) -> CandleDownload:
    """Queue a failed download again; it continues from the last stored candle."""
    with transaction.atomic():
        claimed = CandleDownload.objects.filter(
            pk=download.pk, status=CandleDownload.Status.FAILED
        ).update(status=CandleDownload.Status.QUEUED, finished_at=None)
        if not claimed:
            raise ApplicationError("only a failed download can be resumed", field="status")
        download.refresh_from_db()
        audit_record(
            event_type="market.download_resumed",
            actor=acting_user,
            owner=download.owner,
            target=download,
            data={"previous_error": download.error},
        )
        transaction.on_commit(partial(_enqueue, download.pk))
    return download


def _enqueue(download_id: int) -> None:
    from apps.market.tasks import candle_download_run as task

    task.delay(download_id)


def _timeframe_check(*, exchange: str, timeframe: Timeframe) -> None:
    if timeframe.is_monthly:
        raise ApplicationError(
            "monthly candles cannot be downloaded; download 1d and resample", field="timeframe"
        )
    client = ccxt_live.client_build(
        ccxt_live.ClientSpec(
            exchange_id=exchange, api_key=None, secret=None, passphrase=None, mode="live"
        )
    )
    try:
        offered = dict(client.timeframes or {})
    finally:
        ccxt_live.close(client)
    if timeframe.code not in offered:
        raise ApplicationError(
            f"{exchange} has no {timeframe} candles (it offers {', '.join(offered)})",
            field="timeframe",
        )


def _range_check(
    *, start: datetime | None, end: datetime | None, timeframe: Timeframe
) -> tuple[datetime, datetime]:
    if start is None:
        raise ApplicationError("a start time is required", field="start")
    if end is None:
        raise ApplicationError("an end time is required", field="end")
    if timezone.is_naive(start) or timezone.is_naive(end):
        raise ApplicationError("times must be UTC (with a time zone)", field="start")
    if start < EARLIEST:
        raise ApplicationError(f"start must be on or after {utc_text(EARLIEST)}", field="start")
    if end <= start:
        raise ApplicationError("end must be after start", field="end")
    if end > timezone.now() + timedelta(seconds=timeframe.seconds):
        raise ApplicationError("end must not be in the future", field="end")
    candles = (end - start).total_seconds() / timeframe.seconds
    if candles > MAX_CANDLES:
        raise ApplicationError(
            f"the range holds {candles:,.0f} {timeframe} candles; one download takes at most "
            f"{MAX_CANDLES:,} (split it, or pick a longer timeframe)",
            field="end",
        )
    return start, end


def candle_download_run(*, download_id: int) -> bool:
    """Run a queued download to its end; False when it was not queued (nothing to do).

    Failures end the run as `failed` with a message for the owner; what was stored stays.
    """
    claimed = CandleDownload.objects.filter(
        pk=download_id, status=CandleDownload.Status.QUEUED
    ).update(status=CandleDownload.Status.RUNNING, started_at=timezone.now(), error="")
    if not claimed:
        return False
    download = CandleDownload.objects.get(pk=download_id)
    try:
        _run(download)
    except (ApplicationError, ccxt_live.BrokerError) as exc:
        message = exc.message if isinstance(exc, ApplicationError) else str(exc)
        _finish(download, status=CandleDownload.Status.FAILED, error=_failure(download, message))
    except Exception:
        logger.exception("candle download %s failed", download_id)
        _finish(
            download,
            status=CandleDownload.Status.FAILED,
            error=_failure(download, "an internal error stopped the download"),
        )
        raise
    return True


def _run(download: CandleDownload) -> None:
    _, _, timeframe = series_key_clean(
        exchange=download.exchange, symbol=download.symbol, timeframe=download.timeframe
    )
    step = timeframe.seconds * 1000
    start_ms, end_ms = _ms(download.start), _ms(download.end)
    since = _resume_ms(download, step=step) or start_ms
    spec = client_spec(
        exchange=download.exchange, mode="live", api_key=None, api_secret=None, passphrase=None
    )
    with exchange_client(spec) as client:
        pages = ohlcv_pages(
            since_ms=since,
            end_ms=end_ms,
            step_ms=step,
            fetch=lambda first, last: _fetch(client, download, since=first, until=last),
        )
        for page in pages:
            rows = page.rows
            download.pages += 1
            now_ms = int(time.time() * 1000)
            closed = [row for row in rows if row[0] + step <= now_ms]
            if closed:
                result = candles_store(
                    exchange=download.exchange,
                    symbol=download.symbol,
                    timeframe=download.timeframe,
                    candles=ohlcv_arrays(closed),
                    source=f"ccxt:{download.exchange}",
                    acting_user=download.owner,
                    event_type="market.candles_downloaded",
                    extra={"download": download.pk, "page": download.pages},
                )
                download.candles_stored += result.inserted
            if len(closed) < len(rows):
                break  # the candle still forming: nothing later is closed either
            download.progress = round(
                100 * (min(page.next_since, end_ms) - start_ms) / (end_ms - start_ms), 1
            )
            CandleDownload.objects.filter(pk=download.pk).update(
                pages=download.pages,
                candles_stored=download.candles_stored,
                progress=download.progress,
                updated_at=timezone.now(),
            )
    series = CandleSeries.objects.filter(
        exchange=download.exchange, symbol=download.symbol, timeframe=download.timeframe
    ).first()
    if series is None or not _stored_in_range(download):
        raise ApplicationError(
            f"{download.exchange} has no {download.symbol} {download.timeframe} candles between "
            f"{utc_text(download.start)} and {utc_text(download.end)}",
            field="start",
        )
    coverage = candle_series_coverage(series=series)
    download.gaps = [
        [utc_text(gap.start), utc_text(gap.end), gap.missing]
        for gap in coverage.gaps
        if gap.end >= download.start and gap.start < download.end
    ]
    download.gaps_found = len(download.gaps)
    download.progress = 100.0
    _finish(download, status=CandleDownload.Status.DONE, error="")


@dataclass(frozen=True)
class OhlcvPage:
    rows: list[ccxt_live.OhlcvRow]
    next_since: int  # ms: where the next page starts


def ohlcv_pages(
    *,
    since_ms: int,
    end_ms: int,
    step_ms: int,
    fetch: Callable[[int, int], list[ccxt_live.OhlcvRow]],
) -> Iterator[OhlcvPage]:
    """The candles opening in [since_ms, end_ms), page by page, oldest page first: the one
    paging of `fetch_ohlcv` (downloads and the bots' live feed).

    Each page asks `fetch(since, until)` (until inclusive) for at most `PAGE_LIMIT`
    candles of one window [since, since + PAGE_LIMIT steps), so an exchange that answers
    with the newest candles first (Bybit) still pages forward, and an empty window (a gap
    at the exchange) does not end the range. The caller may stop early."""
    since = since_ms
    while since < end_ms:
        until = min(since + PAGE_LIMIT * step_ms, end_ms) - 1
        rows = fetch(since, until)
        # A full page may stop short of its window (an exchange with a smaller cap).
        since = rows[-1][0] + step_ms if len(rows) >= PAGE_LIMIT else until + 1
        yield OhlcvPage(rows, since)


def _fetch(
    client: Any, download: CandleDownload, *, since: int, until: int
) -> list[ccxt_live.OhlcvRow]:
    """One page, waiting out rate limits and retrying network failures a bounded number."""
    failures = waits = 0
    while True:
        try:
            return ccxt_live.fetch_ohlcv_page(
                client,
                symbol=download.symbol,
                timeframe=download.timeframe,
                since_ms=since,
                until_ms=until,
                limit=PAGE_LIMIT,
            )
        except ccxt_live.ExchangeRateLimitedError as exc:
            waits += 1
            if waits > RATE_LIMIT_WAITS:
                raise ccxt_live.ExchangeUnavailableError(
                    f"{exc} Still rate limited after {RATE_LIMIT_WAITS} waits."
                ) from None
            retry_after = DEFAULT_RETRY_AFTER if exc.retry_after is None else exc.retry_after
            sleep(min(retry_after, MAX_RETRY_AFTER))
        except ccxt_live.ExchangeRequestError:
            raise
        except ccxt_live.ExchangeUnavailableError as exc:
            failures += 1
            if failures >= NETWORK_ATTEMPTS:
                raise ccxt_live.ExchangeUnavailableError(
                    f"{exc} Gave up after {NETWORK_ATTEMPTS} attempts at the page from "
                    f"{_iso_ms(since)}."
                ) from None
            sleep(float(2 ** (failures - 1)))


def _failure(download: CandleDownload, message: str) -> str:
    last = _resume_ms(download, step=0)
    if last is None:
        return f"{message} No candles of this range are stored yet; run it again to retry."
    return (
        f"{message} {download.candles_stored} candles stored so far, up to {_iso_ms(last)}; "
        f"resume to continue from there."
    )


def _finish(download: CandleDownload, *, status: str, error: str) -> None:
    download.status = status
    download.error = error
    download.finished_at = timezone.now()
    with transaction.atomic():
        download.save()
        audit_record(
            event_type=f"market.download_{status}",
            actor=download.owner,
            owner=download.owner,
            target=download,
            data={
                "pages": download.pages,
                "candles_stored": download.candles_stored,
                "gaps_found": download.gaps_found,
                "error": error,
            },
        )


def _resume_ms(download: CandleDownload, *, step: int) -> int | None:
    """Last stored open time in the range plus `step` (ms); None when none is stored."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT max(c.open_time) FROM market_candle c JOIN market_candleseries s "
            "ON s.id = c.series_id WHERE s.exchange = %s AND s.symbol = %s "
            "AND s.timeframe = %s AND c.open_time >= %s AND c.open_time < %s",
            [download.exchange, download.symbol, download.timeframe, download.start, download.end],
        )
        last = cursor.fetchone()[0]
    return None if last is None else _ms(last) + step


def _stored_in_range(download: CandleDownload) -> bool:
    return _resume_ms(download, step=0) is not None


def ohlcv_arrays(rows: list[ccxt_live.OhlcvRow]) -> CandleArrays:
    """ccxt OHLCV rows ([ms, open, high, low, close, volume]) as engine arrays."""
    table = np.array(rows, dtype=np.float64).reshape(-1, 6)
    times = np.array([row[0] for row in rows], dtype="datetime64[ms]").astype("datetime64[ns]")
    return CandleArrays(
        times,
        *(np.ascontiguousarray(table[:, column]) for column in range(1, 6)),
    )


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _iso_ms(value: int) -> str:
    return utc_text(datetime.fromtimestamp(value / 1000, tz=UTC))
