"""backtest_task_create validates everything first: each bad input is named and nothing
is written (no task, no pair, no audit event, nothing enqueued)."""

from decimal import Decimal

import pytest

from apps.audit.models import AuditEvent
from apps.backtests.models import BacktestPair, BacktestTask
from apps.backtests.services import BacktestInvalid, backtest_task_create
from tests.apps.backtests.conftest import END, START, pair_input


def create(owner, pairs, **overrides):
    values = {
        "owner": owner,
        "name": "Two pairs",
        "exchange": "binance",
        "market_type": "spot",
        "start": START,
        "end": END,
    }
    return backtest_task_create(**(values | overrides), pairs=pairs)


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
        ({"order_type": "limit"}, "pairs[0].order_type", "limit orders are not available"),
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


def test_futures_are_refused_with_a_clear_message(
    alice, alice_version, candles, enqueued, django_capture_on_commit_callbacks
):
    assert_refused(
        "market_type",
        "futures backtests are not available yet",
        lambda: create(alice, [pair_input(alice_version)], market_type="futures"),
        enqueued,
        django_capture_on_commit_callbacks,
    )


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
