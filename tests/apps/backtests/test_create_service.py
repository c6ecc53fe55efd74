"""backtest_task_create validates everything first: each bad input is named and nothing
is written (no task, no pair, no audit event, nothing enqueued)."""

from decimal import Decimal

import pytest

from apps.audit.models import AuditEvent
from apps.backtests.models import BacktestPair, BacktestTask
from apps.backtests.services import BacktestInvalid
from tests.apps.backtests.conftest import END, START, pair_input
from tests.apps.backtests.conftest import task_create as create


def snapshot():
    return (
        BacktestTask.objects.count(),
        BacktestPair.objects.count(),
        AuditEvent.objects.filter(event_type__startswith="backtests.").count(),
    )


def assert_refused(field, words, call, enqueued, django_capture_on_commit_callbacks):
    before = snapshot()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(BacktestInvalid) as info:
        call()
    assert info.value.field == field, info.value.problems
    assert words in info.value.message
    assert snapshot() == before
    assert enqueued == []
    return info.value


def test_it_writes_task_pairs_and_audit_and_enqueues_after_commit(
    alice, alice_version, candles, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        task = create(alice, [pair_input(alice_version), pair_input(alice_version, "BNB/USDT")])
    assert enqueued == []  # nothing is sent before the commit
    for callback in callbacks:
        callback()
    assert enqueued == [((task.pk,), task.celery_task_id)]
    assert task.status == "queued"
    assert [p.label for p in task.pairs.order_by("position")] == ["BTC/USDT 1h", "BNB/USDT 1h"]
    pair = task.pairs.get(position=0)
    assert pair.taker_fee == Decimal("0.001")
    assert pair.strategy_version == alice_version
    event = AuditEvent.objects.get(event_type="backtests.task_created")
    assert event.target_id == str(task.pk)
    assert event.data["pairs"][1]["symbol"] == "BNB/USDT"


def test_it_refuses_charlies_strategy_version(
    alice, charlie_version, candles, enqueued, django_capture_on_commit_callbacks
):
    assert_refused(
        "pairs[0].strategy_version",
        f"strategy version {charlie_version.pk} not found",
        lambda: create(alice, [pair_input(charlie_version)]),
        enqueued,
        django_capture_on_commit_callbacks,
    )


def test_it_refuses_a_range_without_candles_naming_the_pair(
    alice, alice_version, candles, enqueued, django_capture_on_commit_callbacks
):
    from datetime import UTC, datetime

    error = assert_refused(
        "pairs[0].symbol",
        "no candles for BTC/USDT 1h on binance between 2010-01-01 00:00 and 2011-01-01 00:00",
        lambda: create(
            alice,
            [pair_input(alice_version)],
            start=datetime(2010, 1, 1, tzinfo=UTC),
            end=datetime(2011, 1, 1, tzinfo=UTC),
        ),
        enqueued,
        django_capture_on_commit_callbacks,
    )
    assert len(error.problems) == 1


def test_a_second_pair_without_candles_writes_nothing_for_the_first(
    alice, alice_version, candles, enqueued, django_capture_on_commit_callbacks
):
    assert_refused(
        "pairs[1].symbol",
        "no candles for ETH/USDT 1h",
        lambda: create(alice, [pair_input(alice_version), pair_input(alice_version, "ETH/USDT")]),
        enqueued,
        django_capture_on_commit_callbacks,
    )


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"taker_fee": Decimal("0.5")}, "pairs[0].taker_fee", "fee must be a fraction"),
        ({"maker_fee": Decimal("0.2")}, "pairs[0].maker_fee", "maker_fee must be a fraction"),
        ({"stop_loss": Decimal("1.5")}, "pairs[0].stop_loss", "stop_loss must be a fraction"),
        ({"initial_capital": Decimal(0)}, "pairs[0].initial_capital", "cash must be positive"),
        ({"sizing": "risk"}, "pairs[0].stop_loss", "required when sizing by risk"),
        ({"order_type": "stop"}, "pairs[0].order_type", "choose one of market, limit"),
        (
            {"order_type": "limit", "limit_offset": Decimal("0.5")},
            "pairs[0].limit_offset",
            "limit_offset must be a fraction between 0 and 0.5",
        ),
        ({"leverage": Decimal(3)}, "pairs[0].leverage", "leverage above 1 needs a futures market"),
        ({"direction": "short"}, "pairs[0].direction", "spot backtests are long only"),
        ({"timeframe": "7x"}, "pairs[0].timeframe", "7x"),
        ({"symbol": "btcusdt"}, "pairs[0].symbol", "BASE/QUOTE"),
    ],
)
def test_it_names_each_bad_execution_setting(
    overrides,
    field,
    words,
    alice,
    alice_version,
    candles,
    enqueued,
    django_capture_on_commit_callbacks,
):
    assert_refused(
        field,
        words,
        lambda: create(alice, [pair_input(alice_version, **overrides)]),
        enqueued,
        django_capture_on_commit_callbacks,
    )


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"leverage": Decimal(126)}, "pairs[1].leverage", "leverage must be between 1 and 125"),
        ({"leverage": Decimal("0.5")}, "pairs[1].leverage", "leverage must be between 1 and 125"),
        ({"direction": "sideways"}, "pairs[1].direction", "direction must be 'long' or 'short'"),
        (
            {"funding_rate": Decimal("0.02")},
            "pairs[1].funding_rate",
            "funding_rate must be between -0.01 and 0.01",
        ),
        (
            {"maintenance_margin": Decimal("0.5")},
            "pairs[1].maintenance_margin",
            "maintenance_margin must be a fraction below 0.5",
        ),
    ],
)
def test_it_names_each_bad_futures_setting_of_the_second_pair(
    overrides,
    field,
    words,
    alice,
    alice_version,
    candles,
    enqueued,
    django_capture_on_commit_callbacks,
):
    assert_refused(
        field,
        words,
        lambda: create(
            alice,
            [pair_input(alice_version), pair_input(alice_version, "BNB/USDT", **overrides)],
            market_type="futures",
        ),
        enqueued,
        django_capture_on_commit_callbacks,
    )


def test_a_futures_task_stores_every_pair_setting(
    alice, alice_version, candles, enqueued, django_capture_on_commit_callbacks
):
    settings = {
        "leverage": Decimal(5),
        "direction": "short",
        "funding_rate": Decimal("-0.0002"),
        "maintenance_margin": Decimal("0.01"),
        "order_type": "limit",
        "maker_fee": Decimal("0.0002"),
        "limit_offset": Decimal("0.001"),
    }
    task = create(alice, [pair_input(alice_version, **settings)], market_type="futures")
    pair = task.pairs.get()
    assert task.market_type == "futures"
    assert {name: getattr(pair, name) for name in settings} == settings


def test_a_spot_task_keeps_the_futures_defaults(
    alice, alice_version, candles, enqueued, django_capture_on_commit_callbacks
):
    pair = create(alice, [pair_input(alice_version)]).pairs.get()
    assert (pair.leverage, pair.direction, pair.limit_offset) == (1, "long", 0)
    assert (pair.funding_rate, pair.maintenance_margin) == (Decimal("0.0001"), Decimal("0.005"))


def test_it_needs_a_pair_and_a_forward_range(
    alice, alice_version, candles, enqueued, django_capture_on_commit_callbacks
):
    assert_refused(
        "pairs",
        "at least one pair",
        lambda: create(alice, []),
        enqueued,
        django_capture_on_commit_callbacks,
    )
    assert_refused(
        "end",
        "after the start",
        lambda: create(alice, [pair_input(alice_version)], start=END, end=START),
        enqueued,
        django_capture_on_commit_callbacks,
    )
