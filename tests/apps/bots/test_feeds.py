"""Candle feeds: live ccxt polling (the real ccxt client against the loopback fake
exchange) behind the shared rate limiter, the replay's clock, and late candles dropped."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from apps.bots import feeds, tasks
from apps.bots.models import Bot, BotRun, Tick
from apps.bots.schedule import bots_schedule
from apps.bots.services.lifecycle import bot_run_start
from apps.bots.tick import bot_tick_run
from tests.apps.bots.conftest import (
    HOUR,
    START,
    paper_account,
    replay_bot,
    rewind,
    template_version,
)
from tests.fakes.exchange import run_fake_exchange

CSV = Path(__file__).resolve().parents[3] / "data" / "candles" / "BTC-USDT_1h.csv"


@pytest.fixture
def fake_exchange(settings):
    with run_fake_exchange() as fake:
        fake.klines_load("BTCUSDT", CSV, "1h")
        settings.EXCHANGE_BASE_URL_OVERRIDE = fake.base_url
        settings.EXCHANGE_TIMEOUT_MS = 5_000
        settings.BOTS_WARMUP_BARS = 50
        yield fake


def live_bot(owner, name: str, account=None) -> Bot:
    return Bot.objects.create(
        owner=owner,
        name=name,
        strategy_version=template_version(owner, name=f"SMA {name}", fast=3, slow=8),
        account=account or paper_account(owner, label=f"Paper {name}"),
        symbols=["BTC/USDT"],
        timeframe="1h",
        feed=Bot.Feed.LIVE,
        risk_profile="aggressive",
    )


def at_close(candle: datetime):
    return lambda: candle + HOUR + timedelta(seconds=3)


def test_live_bots_share_one_candle_request_per_candle(alice, fake_exchange):
    runs = [bot_run_start(bot=live_bot(alice, name), acting_user=alice) for name in ("A", "B")]
    for k in range(3):
        candle = START + HOUR * k
        for run in runs:
            assert bot_tick_run(run_id=run.pk, candle_time=candle, now=at_close(candle)) == "done"
    assert len(fake_exchange.kline_requests()) == 3  # one per candle, not per bot
    for run in runs:
        run.refresh_from_db()
        assert run.ticks_done == 3 and run.last_candle_at == START + HOUR * 2
        assert Tick.objects.get(run=run, candle_time=START).delay_ms == 3000


def test_a_rate_limited_exchange_means_retry_later_not_failure(alice, fake_exchange):
    run = bot_run_start(bot=live_bot(alice, "Limited"), acting_user=alice)
    fake_exchange.kline_rate_limit = 1
    fake_exchange.kline_retry_after = 0
    assert bot_tick_run(run_id=run.pk, candle_time=START, now=at_close(START)) == "retry"
    run.refresh_from_db()
    assert run.status == "RUNNING" and not Tick.objects.filter(run=run).exists()
    assert bot_tick_run(run_id=run.pk, candle_time=START, now=at_close(START)) == "done"


def test_live_scheduling_waits_for_the_close(alice, db):
    run = bot_run_start(bot=live_bot(alice, "Clock"), acting_user=alice)
    now = datetime(2024, 5, 1, 10, 30, tzinfo=UTC)
    assert feeds.next_candle(run.bot, run, now) == datetime(2024, 5, 1, 9, tzinfo=UTC)
    run.last_candle_at = datetime(2024, 5, 1, 9, tzinfo=UTC)
    assert feeds.next_candle(run.bot, run, now) is None  # 10:00 closes at 11:00
    later = datetime(2024, 5, 1, 11, 0, 5, tzinfo=UTC)
    assert feeds.next_candle(run.bot, run, later) == datetime(2024, 5, 1, 10, tzinfo=UTC)


class FakeClock:
    """time.time / monotonic / sleep for the rate limiter, without real waiting."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_rate_limiter_is_shared_and_waits_for_the_next_second(monkeypatch, db):
    clock = FakeClock()
    monkeypatch.setattr(feeds, "time", clock)
    for _ in range(3):
        feeds.rate_limit_wait("test-shared", per_second=3)
    assert clock.slept == []
    feeds.rate_limit_wait("test-shared", per_second=3)  # the 4th waits for the next second
    assert len(clock.slept) == 1 and 0 < clock.slept[0] <= 1.01
    # The count lives in Redis: another limiter name has its own budget.
    feeds.rate_limit_wait("test-other", per_second=3)
    assert len(clock.slept) == 1


def test_replay_candles_close_on_the_replay_clock(
    alice, btc_hours, django_capture_on_commit_callbacks
):
    run = bot_run_start(bot=replay_bot(alice, template_version(alice)), acting_user=alice)
    assert feeds.closes_at(run.bot, run, START + HOUR * 4) == run.replay_anchor + timedelta(
        seconds=2
    )  # 4 candles x 0.5 s
    sent: list[tuple[list[int], str, None]] = []
    with django_capture_on_commit_callbacks(execute=True):
        assert bots_schedule(enqueue=lambda *m: sent.append(m)) == 1
    assert sent == [([run.pk], START.isoformat(), None)]
    # The claim's lease keeps a second beat from sending it again.
    assert bots_schedule(enqueue=lambda *m: sent.append(m)) == 0


def test_a_candle_closing_soon_is_sent_ahead_with_an_eta_at_its_close(
    alice, btc_hours, settings, django_capture_on_commit_callbacks
):
    settings.BOTS_SCHEDULE_AHEAD_SECONDS = 3
    soon = bot_run_start(bot=replay_bot(alice, template_version(alice)), acting_user=alice)
    later = bot_run_start(
        bot=replay_bot(alice, soon.bot.strategy_version, name="Later"), acting_user=alice
    )
    now = timezone.now()
    BotRun.objects.filter(pk=soon.pk).update(replay_anchor=now + timedelta(seconds=2))
    BotRun.objects.filter(pk=later.pk).update(replay_anchor=now + timedelta(seconds=10))
    sent: list[tuple[list[int], str, datetime | None]] = []
    with django_capture_on_commit_callbacks(execute=True):
        assert bots_schedule(now=now, enqueue=lambda *m: sent.append(m)) == 1
    assert sent == [([soon.pk], START.isoformat(), now + timedelta(seconds=2))]
    assert BotRun.objects.get(pk=later.pk).next_due_at == now + timedelta(seconds=10)


def test_a_tick_message_delivered_before_its_close_waits_for_it(alice, btc_hours, monkeypatch):
    run = bot_run_start(bot=replay_bot(alice, template_version(alice)), acting_user=alice)
    close = timezone.now() + timedelta(seconds=30)
    again = []
    monkeypatch.setattr(tasks.bot_ticks, "apply_async", lambda **kw: again.append(kw))

    outcome = tasks.bot_ticks([run.pk], START.isoformat(), close.isoformat())

    assert outcome == {run.pk: "early"}
    assert again == [{"args": [[run.pk], START.isoformat(), close.isoformat()], "eta": close}]
    assert not Tick.objects.filter(run=run).exists()
    past = (timezone.now() - timedelta(seconds=1)).isoformat()
    assert tasks.bot_ticks([run.pk], START.isoformat(), past) == {run.pk: "done"}


def test_a_candle_too_late_is_dropped_and_counted(alice, btc_hours, settings):
    settings.BOTS_TICK_MAX_LAG_SECONDS = 60
    run = bot_run_start(bot=replay_bot(alice, template_version(alice)), acting_user=alice)
    rewind(run, 1000)  # candle 0 closed 500 s ago
    assert bot_tick_run(run_id=run.pk, candle_time=START) == "dropped"
    run.refresh_from_db()
    assert run.ticks_dropped == 1 and run.ticks_done == 0 and run.last_candle_at == START
    assert Tick.objects.get(run=run).status == "dropped"
    BotRun.objects.filter(pk=run.pk).update(replay_anchor=run.replay_anchor + timedelta(hours=1))
    assert bot_tick_run(run_id=run.pk, candle_time=START + HOUR) == "done"


def test_a_live_window_longer_than_a_page_is_paged_forward_in_order(alice, fake_exchange, settings):
    settings.BOTS_WARMUP_BARS = 1500  # more than one 1000-candle page
    bot = live_bot(alice, "Long window")
    candle = START + HOUR * 1600
    window = feeds.window(bot, "BTC/USDT", candle)
    assert len(window) == 1501
    times = window.time.astype("datetime64[s]").astype("int64")
    assert (times[1:] - times[:-1] == 3600).all()
    assert len(fake_exchange.kline_requests()) == 2


def test_a_live_window_goes_on_past_an_empty_page(alice, fake_exchange, settings):
    """An exchange that has nothing for a whole page's window (a gap) does not end the
    window: the next page still comes, so the candle is found."""
    settings.BOTS_WARMUP_BARS = 1500
    bot = live_bot(alice, "Gap")
    candle = START + HOUR * 1600
    first = int((candle - HOUR * 1500).timestamp() * 1000)
    fake_exchange.kline_gap = (first, first + 3_600_000 * 1100)
    window = feeds.window(bot, "BTC/USDT", candle)
    assert len(window) == 1501 - 1101
