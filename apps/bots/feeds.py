"""Where a bot's candles come from: a replay of stored candles, or live ccxt polling.

Both answer the same questions for the scheduler and the tick:
- `next_candle(bot, run, now)`: the open time of the next candle to tick (None: nothing
  yet, or, for a replay, `REPLAY_OVER`);
- `closes_at(bot, run, candle_time)`: the wall-clock moment that candle counts as closed
  (the tick's delay is measured from it), and `ready_at`, when its tick may start;
- `window(bot, run, symbol, candle_time)`: the warmup window ending with that candle.

Replay (tests, the demo, the benchmark): stored candles from the market app, candle k of
the replay (k bars after `Bot.replay_start`) closing at `run.replay_anchor + k x
Bot.replay_seconds_per_candle`. The window never reaches before `replay_start`, so a
replay sees exactly what a backtest from that start sees. Stored candles never change,
so windows are cached in the worker process.

Live: ccxt `fetch_ohlcv` polling through `ccxt_live.fetch_ohlcv_page`, paged as downloads
are (`market.download.ohlcv_pages`), one request per
(exchange, symbol, timeframe, candle) shared by every bot through the cache, and every
request behind a Redis rate limiter shared by all workers (`rate_limit_wait`).
"""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime, timedelta
from typing import Final

import numpy as np
from django.conf import settings
from django.core.cache import cache

from apps.bots.models import Bot, BotRun
from apps.common.health import redis_client
from apps.engine.brokers import ccxt_live
from apps.engine.candles import CandleArrays
from apps.engine.timeframes import parse_timeframe
from apps.exchanges.clients import client_spec, exchange_client
from apps.market.download import PAGE_LIMIT, ohlcv_arrays, ohlcv_pages
from apps.market.models import Candle as StoredCandle
from apps.market.selectors import candles_load

REPLAY_OVER: Final = datetime.max.replace(tzinfo=UTC)
# How long after a candle's close the exchange is asked for it (it publishes late).
LIVE_GRACE = timedelta(seconds=2)


class FeedError(Exception):
    """The market data for a tick cannot be had (the message is for the bot log)."""


class FeedUnavailable(Exception):
    """The exchange cannot serve the candles right now (rate limit, outage): try later."""


def bar(bot: Bot) -> timedelta:
    return timedelta(seconds=parse_timeframe(bot.timeframe).seconds)


def warmup_bars() -> int:
    return int(getattr(settings, "BOTS_WARMUP_BARS", 300))


# --- scheduling --------------------------------------------------------------------------


def next_candle(bot: Bot, run: BotRun, now: datetime) -> datetime | None:
    if bot.feed == Bot.Feed.REPLAY:
        return _replay_next(bot, run)
    step = bar(bot)
    if run.last_candle_at is not None:
        candle = run.last_candle_at + step
    else:  # a live start ticks the last closed candle first
        candle = _floor(now, step) - step
    return candle if candle + step + LIVE_GRACE <= now else None


def market_now(bot: Bot, run: BotRun, now: datetime) -> datetime:
    """The run's "now" in market time: a replay lives at its last candle's close, so an
    order placed outside a tick (a stop's sells) fills on the replay's next candle."""
    if bot.feed != Bot.Feed.REPLAY:
        return now
    if run.last_candle_at is None:
        assert bot.replay_start is not None
        return bot.replay_start
    return run.last_candle_at + bar(bot)


def closes_at(bot: Bot, run: BotRun, candle_time: datetime) -> datetime:
    if bot.feed == Bot.Feed.REPLAY:
        assert run.replay_anchor is not None and bot.replay_start is not None
        index = (candle_time - bot.replay_start) / bar(bot)
        return run.replay_anchor + timedelta(seconds=float(bot.replay_seconds_per_candle) * index)
    return candle_time + bar(bot)


def ready_at(bot: Bot, run: BotRun, candle_time: datetime) -> datetime:
    """The wall-clock moment a tick of that candle may start: its close, and for a live
    feed the exchange's publishing grace after it (`next_candle` waits as long)."""
    close = closes_at(bot, run, candle_time)
    return close if bot.feed == Bot.Feed.REPLAY else close + LIVE_GRACE


def _replay_next(bot: Bot, run: BotRun) -> datetime | None:
    after = run.last_candle_at
    candles = StoredCandle.objects.filter(
        series__exchange=bot.market_exchange,
        series__symbol=bot.symbols[0],
        series__timeframe=bot.timeframe,
    )
    if after is None:
        candles = candles.filter(open_time__gte=bot.replay_start)
    else:
        candles = candles.filter(open_time__gt=after)
    first = candles.order_by("open_time").values_list("open_time", flat=True).first()
    return REPLAY_OVER if first is None else first


def _floor(moment: datetime, step: timedelta) -> datetime:
    seconds = int(step.total_seconds())
    stamp = int(moment.timestamp())
    return datetime.fromtimestamp(stamp - stamp % seconds, tz=UTC)


# --- windows -----------------------------------------------------------------------------


def window(bot: Bot, symbol: str, candle_time: datetime) -> CandleArrays:
    """The warmup window ending with the candle opening at `candle_time`.

    Raises FeedError when that candle is not (yet) there."""
    step = bar(bot)
    start = candle_time - step * warmup_bars()
    if bot.feed == Bot.Feed.REPLAY:
        assert bot.replay_start is not None
        candles = _stored(
            bot.market_exchange, symbol, bot.timeframe, max(start, bot.replay_start), candle_time
        )
    else:
        candles = _live(bot.account.exchange, symbol, bot.timeframe, start, candle_time)
    if len(candles) == 0 or _last_time(candles) != candle_time:
        raise FeedError(f"no {bot.timeframe} candle for {symbol} at {candle_time:%Y-%m-%d %H:%M}")
    return candles


def _last_time(candles: CandleArrays) -> datetime:
    ns = int(candles.time[-1].astype("datetime64[ns]").astype(np.int64))
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


@functools.lru_cache(maxsize=4096)
def _stored(
    exchange: str, symbol: str, timeframe: str, start: datetime, last: datetime
) -> CandleArrays:
    return candles_load(
        exchange=exchange,
        symbol=symbol,
        timeframe=timeframe,
        start=start,
        end=last + timedelta(microseconds=1),
    )


def _live(
    exchange: str, symbol: str, timeframe: str, start: datetime, last: datetime
) -> CandleArrays:
    key = f"bots:ohlcv:{exchange}:{symbol}:{timeframe}:{start:%s}:{last:%s}"
    rows = cache.get(key)
    if rows is None:
        rows = _fetch(exchange, symbol, timeframe, start, last)
        cache.set(key, rows, timeout=int((last - start).total_seconds()) or 60)
    return ohlcv_arrays(rows)


def _fetch(
    exchange: str, symbol: str, timeframe: str, start: datetime, last: datetime
) -> list[ccxt_live.OhlcvRow]:
    rows: list[ccxt_live.OhlcvRow] = []
    spec = client_spec(
        exchange=exchange, mode="live", api_key=None, api_secret=None, passphrase=None
    )
    try:
        with exchange_client(spec) as client:

            def fetch(since_ms: int, until_ms: int) -> list[ccxt_live.OhlcvRow]:
                rate_limit_wait(f"ohlcv:{exchange}")
                return ccxt_live.fetch_ohlcv_page(
                    client,
                    symbol=symbol,
                    timeframe=timeframe,
                    since_ms=since_ms,
                    until_ms=until_ms,
                    limit=PAGE_LIMIT,
                )

            step_ms = parse_timeframe(timeframe).seconds * 1000
            for page in ohlcv_pages(
                since_ms=_ms(start), end_ms=_ms(last) + 1, step_ms=step_ms, fetch=fetch
            ):
                rows.extend(page.rows)
    except (ccxt_live.ExchangeRateLimitedError, ccxt_live.ExchangeUnavailableError) as exc:
        raise FeedUnavailable(str(exc)) from None
    except ccxt_live.BrokerError as exc:
        raise FeedError(str(exc)) from None
    return rows


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# --- the shared rate limiter -------------------------------------------------------------


def rate_limit_wait(name: str, *, per_second: int | None = None, max_wait: float = 30.0) -> None:
    """Take one request slot of `name`, shared by every worker through Redis: at most
    `per_second` (settings.BOTS_FEED_REQUESTS_PER_SECOND) requests in each wall second.
    Waits for a free slot; raises FeedUnavailable after `max_wait` seconds."""
    limit = per_second or int(getattr(settings, "BOTS_FEED_REQUESTS_PER_SECOND", 5))
    client = redis_client()
    prefix = settings.CACHES["default"].get("KEY_PREFIX") or "tl"
    deadline = time.monotonic() + max_wait
    while True:
        second = int(time.time())
        key = f"{prefix}:ratelimit:{name}:{second}"
        pipe = client.pipeline()
        pipe.incr(key)
        pipe.expire(key, 2)
        count = int(pipe.execute()[0])
        if count <= limit:
            return
        if time.monotonic() > deadline:
            raise FeedUnavailable(f"rate limit for {name} still full after {max_wait:.0f} s")
        time.sleep(max(0.0, second + 1 - time.time()) + 0.001)
