"""The weighted vote through the strategies app: builder, version page, API, a backtest."""

import json

import numpy as np
import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.backtests import progress as backtest_progress
from apps.backtests.services import backtest_task_create
from apps.backtests.tasks import backtest_task_run
from apps.engine.indicators import rsi, sma
from apps.market.selectors import candles_load
from apps.strategies.describe import TIMES
from apps.strategies.models import Strategy, StrategyVersion
from apps.strategies.services import strategy_create
from tests.apps.backtests.conftest import END, START, import_pair_candles, pair_input
from tests.apps.strategies.conftest import (
    CROSS_ENTRY,
    CROSS_EXIT,
    builder_post,
    close_vs_sma,
    rsi_vs,
)

pytestmark = pytest.mark.django_db
CREATE = reverse("strategies:create") + "?kind=conditions"
API = reverse("api-strategies")

RSI_LOW = rsi_vs("<", 40)
ABOVE_TREND = close_vs_sma(">", 50)
BELOW_LONG = close_vs_sma("<", 200)
VOTE = {
    "weighted": [
        {"weight": 2, "when": RSI_LOW},
        {"weight": 1, "when": ABOVE_TREND},
        {"weight": -1, "when": BELOW_LONG},
    ],
    "threshold": 2,
}
RSI_HIGH = rsi_vs(">", 60)


def _nothing_written():
    assert not Strategy.objects.exists()
    assert not StrategyVersion.objects.exists()
    assert not AuditEvent.objects.filter(event_type__startswith="strategy.").exists()


def _after(text: str, marker: str) -> str:
    return text[text.index(marker) :]


def _input(text: str, dom_id: str) -> str:
    """The whole <input> tag with this id, attributes on one line."""
    start = text.rindex("<input", 0, text.index(f'id="{dom_id}"'))
    return " ".join(text[start : text.index(">", start) + 1].split())


def test_the_builder_saves_a_weighted_vote_as_a_new_version(alice_client):
    response = alice_client.post(CREATE, builder_post(VOTE, CROSS_EXIT, name="Vote"))
    assert response.status_code == 302
    version = StrategyVersion.objects.get()
    assert version.entry == VOTE
    assert AuditEvent.objects.filter(event_type="strategy.created").count() == 1


def test_switching_a_group_to_a_vote_shows_a_weight_per_condition_and_a_threshold(alice_client):
    entry = {"all": [*CROSS_ENTRY["all"], RSI_LOW]}
    data = builder_post(entry, CROSS_EXIT, action="mode_weighted:entry")
    response = alice_client.post(CREATE, data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    text = response.text
    assert 'name="entry__mode" value="weighted"' in text
    assert "enter when the weights of the true signals add up to at least" in text
    assert 'name="entry__threshold"' in _input(text, "entry__threshold")
    assert 'value="1"' in _input(text, "entry__threshold")
    assert 'name="entry.0__weight" id="entry-0__weight" value="1"' in _input(
        text, "entry-0__weight"
    )
    assert 'value="1"' in _input(text, "entry-1__weight")
    assert "entry.2__weight" not in text
    # The exit group stayed ALL and its condition has no weight.
    assert "exit.0__weight" not in text
    _nothing_written()


def test_weights_and_threshold_survive_a_builder_action(alice_client):
    data = builder_post(VOTE, CROSS_EXIT, action="add_cond:entry")
    text = alice_client.post(CREATE, data, HTTP_HX_REQUEST="true").text
    assert 'value="-1"' in _input(text, "entry-2__weight")
    assert 'value="1"' in _input(text, "entry-3__weight")
    assert 'value="2"' in _input(text, "entry__threshold")


def test_a_bad_weight_is_marked_on_its_input_and_nothing_is_written(alice_client):
    data = builder_post(VOTE, CROSS_EXIT, name="Vote")
    data["entry.1__weight"] = ""
    data["entry__threshold"] = "9"
    response = alice_client.post(CREATE, data)
    assert response.status_code == 400
    text = response.text
    assert "entry.weighted[1].weight: must be a finite number" in text
    assert 'aria-invalid="true" title="must be a finite number"' in _input(text, "entry-1__weight")
    assert "aria-invalid" not in _input(text, "entry-0__weight")
    # The threshold is checked against the weights that are valid only when all are.
    assert "entry.threshold" not in text
    _nothing_written()


def test_an_unreachable_threshold_is_marked_on_the_threshold(alice_client):
    data = builder_post(VOTE, CROSS_EXIT, name="Vote", entry__threshold="3.5")
    response = alice_client.post(CREATE, data)
    assert response.status_code == 400
    message = "3.5 can never be reached: the positive weights add up to 3"
    assert f"entry.threshold: {message}" in response.text
    assert f'aria-invalid="true" title="{message}"' in _input(response.text, "entry__threshold")
    _nothing_written()


def test_the_version_page_reads_the_vote_with_its_weights(alice_client, alice):
    nested = {
        "any": [
            VOTE,
            {"weighted": [{"weight": {"param": "w"}, "when": RSI_HIGH}], "threshold": 0.5},
        ]
    }
    _strategy, version = strategy_create(
        owner=alice, name="Vote", kind="conditions", entry=nested, exit=CROSS_EXIT, params={"w": 1}
    )
    text = alice_client.get(reverse("strategies:version_detail", args=[version.pk])).text
    entry = _after(text, 'data-tree="entry"')
    for line in (
        "ANY of",
        "WEIGHTED VOTE ≥ 2 of",
        f"2 {TIMES} RSI(14) is below (&lt;) 40",
        f"1 {TIMES} close is above (&gt;) SMA(50)",
        f"-1 {TIMES} close is below (&lt;) SMA(200)",
        "WEIGHTED VOTE ≥ 0.5 of",
        f"$w {TIMES} RSI(14) is above (&gt;) 60",
    ):
        assert line in entry, line


def test_an_untouched_vote_is_no_change_and_an_edited_weight_is_version_2(alice_client, alice):
    strategy, _ = strategy_create(
        owner=alice, name="Vote", kind="conditions", entry=VOTE, exit=CROSS_EXIT
    )
    edit = reverse("strategies:edit", args=[strategy.pk])
    page = alice_client.get(edit).text
    assert 'value="-1"' in _input(page, "entry-2__weight")
    assert "No changes" in alice_client.post(edit, builder_post(VOTE, CROSS_EXIT), follow=True).text
    assert strategy.versions.count() == 1

    data = builder_post(VOTE, CROSS_EXIT, note="RSI counts more")
    data["entry.0__weight"] = "$rsi_weight"
    data["params_json"] = json.dumps({"rsi_weight": 3})
    assert alice_client.post(edit, data).status_code == 302
    assert strategy.versions.get(number=1).entry == VOTE
    second = strategy.versions.get(number=2)
    assert second.entry["weighted"][0] == {"weight": {"param": "rsi_weight"}, "when": RSI_LOW}
    assert second.params == {"rsi_weight": 3}


def test_the_api_takes_a_vote_and_names_the_path_of_a_bad_weight(alice_client):
    body = {"name": "Vote", "kind": "conditions", "entry": VOTE, "exit": CROSS_EXIT}
    created = alice_client.post(API, body, content_type="application/json")
    assert created.status_code == 201, created.json()
    assert created.json()["versions"][0]["entry"] == VOTE

    bad_vote = {**VOTE, "weighted": [VOTE["weighted"][0], {"weight": "heavy", "when": RSI_LOW}]}
    bad = {**body, "name": "Bad", "entry": {"all": [RSI_HIGH, bad_vote]}}
    response = alice_client.post(API, bad, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"path": "entry.all[1].weighted[1].weight", "message": "must be a finite number"}
    ]
    assert Strategy.objects.count() == 1


def _first_true(signal: np.ndarray, start: int) -> int | None:
    hits = np.flatnonzero(signal[start:])
    return None if len(hits) == 0 else start + int(hits[0])


def test_a_backtest_of_a_vote_enters_exactly_where_the_votes_add_up(
    alice, monkeypatch, django_capture_on_commit_callbacks
):
    import_pair_candles()
    monkeypatch.setattr(backtest_progress, "publish_progress", lambda state: None)
    _strategy, version = strategy_create(
        owner=alice, name="Vote", kind="conditions", entry=VOTE, exit={"all": [RSI_HIGH]}
    )
    task = backtest_task_create(
        owner=alice,
        name="Vote on BTC",
        exchange="binance",
        market_type="spot",
        start=START,
        end=END,
        pairs=[pair_input(version)],
    )
    with django_capture_on_commit_callbacks(execute=True):
        backtest_task_run(task.pk)
    task.refresh_from_db()
    assert task.status == "done", task.error

    # The oracle: the vote computed by hand from the indicators, 2A + B - C >= 2.
    candles = candles_load(
        exchange="binance", symbol="BTC/USDT", timeframe="1h", start=START, end=END
    )
    close, strength = candles.close, rsi(candles.close, 14)
    with np.errstate(invalid="ignore"):
        votes = (
            2.0 * (strength < 40) + 1.0 * (close > sma(close, 50)) - 1.0 * (close < sma(close, 200))
        )
        exits = strength > 60
    entries = votes >= 2
    index = {t: i for i, t in enumerate(candles.time.astype("datetime64[s]").astype("int64"))}
    trades = list(task.pairs.get().trades.order_by("number"))
    assert len(trades) > 10
    flat_from = 0
    for trade in trades:
        # A signal at bar t's close fills at bar t+1: the first vote after going flat.
        entered = index[int(trade.entry_time.timestamp())]
        assert entered - 1 == _first_true(entries, flat_from)
        if trade.exit_time is None:
            assert trade is trades[-1]
            break
        exited = index[int(trade.exit_time.timestamp())]
        assert exited - 1 == _first_true(exits, entered)
        flat_from = exited
