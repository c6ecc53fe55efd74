"""The pages: list, create (ranges pre-filled from the template's schema, re-rendered over
HTMX), detail with progress, ranked results, heatmap and walk-forward windows, cancel and
"Backtest these parameters"; charlie gets 404 everywhere."""

import re
from decimal import Decimal

import pytest

from apps.optimizations.models import OptimizationTask
from apps.optimizations.services import optimization_task_create
from apps.strategies.models import StrategyVersion
from tests.apps.optimizations.conftest import make_version, optimization_input, run_chunks

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def done_grid(alice, alice_version, candles, enqueued, pushes, django_capture_on_commit_callbacks):
    task = optimization_task_create(owner=alice, data=optimization_input(alice_version))
    run_chunks(task, django_capture_on_commit_callbacks)
    task.refresh_from_db()
    return task


def finished_walk_forward(owner, version, capture, **overrides):
    data = optimization_input(
        version,
        method="walk_forward",
        space={"fast": [5, 10, 20], "slow": [30, 50, 100]},
        metric="sharpe",
        in_sample=1500,
        out_of_sample=700,
        **overrides,
    )
    task = optimization_task_create(owner=owner, data=data)
    run_chunks(task, capture)
    task.refresh_from_db()
    return task


@pytest.fixture
def done_walk_forward(
    alice, alice_version, candles, enqueued, pushes, django_capture_on_commit_callbacks
):
    # Strict on purpose: these windows keep ~89 % of their Sharpe, so 95 % flags them.
    return finished_walk_forward(
        alice, alice_version, django_capture_on_commit_callbacks, overfit_threshold=Decimal("0.95")
    )


def form_data(version, series, **overrides):
    data = {
        "strategy_version": str(version.pk),
        "series": str(series.pk),
        "start": "2020-09-01",
        "end": "2021-02-28",
        "method": "grid",
        "metric": "total_return",
        "overfit_threshold": "50",
        "initial_capital": "10000",
        "taker_fee": "0.1",
        "slippage": "0",
        "sizing": "all_in",
        "size_value": "1",
        "vary_fast": "on",
        "min_fast": "5",
        "max_fast": "20",
        "step_fast": "5",
        "vary_slow": "on",
        "values_slow": "30, 50",
    }
    return data | overrides


@pytest.fixture
def series(candles):
    from apps.market.models import CandleSeries

    return CandleSeries.objects.get(symbol="BTC/USDT", timeframe="1h")


def test_the_list_has_an_empty_state(alice_client):
    body = alice_client.get("/optimizations/").content.decode()
    assert 'id="no-optimizations"' in body and "New optimisation" in body


def test_the_list_shows_tasks_and_paginates(alice_client, done_grid):
    body = alice_client.get("/optimizations/").content.decode()
    assert f'id="optimization-{done_grid.pk}"' in body and "Grid search" in body
    for _ in range(20):
        done_grid.pk = None
        done_grid.save()
    first = alice_client.get("/optimizations/").content.decode()
    assert len(re.findall(r'id="optimization-\d+"', first)) == 20 and "Page 1 of 2" in first
    assert (
        len(
            re.findall(
                r'id="optimization-\d+"',
                alice_client.get("/optimizations/?page=2").content.decode(),
            )
        )
        == 1
    )


def test_the_create_page_offers_my_template_versions_with_ranges_and_help(
    alice, alice_client, alice_version, charlie, series
):
    charlies = make_version(charlie, name="Charlie's")
    from apps.strategies.services import strategy_create

    strategy_create(
        owner=alice, name="Script", kind="script", script="def main(sdk, params):\n    pass\n"
    )
    body = alice_client.get(f"/optimizations/new/?version={alice_version.pk}").content.decode()
    assert f'value="{alice_version.pk}" selected' in body
    assert f'value="{charlies.pk}"' not in body
    assert "Script" not in body  # scripts have no parameter schema
    assert "binance · BTC/USDT · 1h" in body
    # Ranges around the version's values (10 and 30), inside the schema, with its help.
    assert 'name="min_fast" value="5"' in body and 'name="max_fast" value="20"' in body
    assert 'name="min_slow" value="15"' in body and 'name="max_slow" value="55"' in body
    assert 'name="step_slow" value="8"' in body  # 15, 23, ... 55: both ends included
    assert "Bars in the fast average." in body and "this version uses 10" in body


def test_changing_the_version_re_renders_only_its_parameters(alice, alice_client, series):
    rsi = make_version(
        alice, name="RSI", template="rsi_swing", period=14, oversold=30, overbought=70
    )
    response = alice_client.get(f"/optimizations/new/?strategy_version={rsi.pk}", **HTMX)
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="opt-params"')
    assert 'name="min_oversold"' in body and 'name="min_fast"' not in body


def test_a_valid_form_queues_the_task_and_redirects(
    alice_client, alice_version, series, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post("/optimizations/new/", form_data(alice_version, series))
    task = OptimizationTask.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/optimizations/{task.pk}/"
    assert task.space == {"fast": {"min": 5.0, "max": 20.0, "step": 5.0}, "slow": [30, 50]}
    assert [(c["fast"], c["slow"]) for c in task.combinations][:3] == [(5, 30), (5, 50), (10, 30)]
    assert (task.taker_fee, task.method) == (Decimal("0.001"), "grid")
    assert len(enqueued) == task.chunk_count


def _error_of(body: str, field: str) -> str:
    """The error text shown with `field`: a parameter's row, or a field's error line."""
    if field.startswith("param-"):
        row = re.search(rf'id="{field}">(.*?)(?:<div class="opt-param"|</section>)', body, re.S)
        found = re.search(r'class="bt-field-error"[^>]*>([^<]*)<', row.group(1))
    elif field == "form":
        found = re.search(r'<div class="bt-errorlist" role="alert">(.*?)</div>', body, re.S)
    else:
        found = re.search(rf'id="id_{field}_error"[^>]*>([^<]*)<', body)
    return found.group(1) if found else ""


@pytest.mark.parametrize(
    ("overrides", "field", "needle"),
    [
        ({"values_slow": "30, fifty"}, "param-slow", "slow must be a number"),
        ({"max_fast": "2000"}, "param-fast", "fast must be between 2 and 1000"),
        ({"vary_fast": "", "vary_slow": ""}, "form", "choose at least one parameter"),
        (
            {"method": "walk_forward", "in_sample": "9000", "out_of_sample": "500"},
            "in_sample",
            "too few",
        ),
        ({"method": "random", "samples": ""}, "samples", "random search needs"),
        ({"start": "2030-01-01", "end": "2030-02-01"}, "series", "no candles"),
        ({"taker_fee": "20"}, "taker_fee", "Ensure this value"),
    ],
)
def test_refused_input_shows_next_to_its_field_and_writes_nothing(
    alice_client, alice_version, series, overrides, field, needle
):
    data = form_data(alice_version, series, **overrides)
    response = alice_client.post("/optimizations/new/", data)
    assert response.status_code == 200
    assert needle in _error_of(response.content.decode(), field)
    assert OptimizationTask.objects.count() == 0


def test_the_detail_page_ranks_rows_and_sorts_them(alice_client, done_grid):
    body = alice_client.get(f"/optimizations/{done_grid.pk}/").content.decode()
    assert 'data-status="done"' in body and 'id="best-metrics"' in body
    best = done_grid.summary["best"]["params"]
    first_row = re.search(r'<tr id="row-(\d+)">', body).group(1)
    assert done_grid.rows.get(number=first_row).params == best
    worst_first = alice_client.get(
        f"/optimizations/{done_grid.pk}/?sort=score&dir=asc&partial=rows", **HTMX
    ).content.decode()
    assert worst_first.lstrip().startswith('<section id="opt-rows"')
    lowest = done_grid.rows.order_by("score").first()
    assert re.search(r'<tr id="row-(\d+)">', worst_first).group(1) == str(lowest.number)


def test_the_heatmap_shows_each_cells_score_for_the_chosen_axes(alice_client, done_grid):
    body = alice_client.get(
        f"/optimizations/{done_grid.pk}/?partial=heatmap&x=slow&y=fast", **HTMX
    ).content.decode()
    assert 'data-x="slow" data-y="fast"' in body
    assert '<option value="slow" selected>' in body
    cells = re.findall(
        r"<td (?:class=\"opt-empty\"|style=\"background: hsl[^\"]+\")[^>]*>([^<]+)</td>", body
    )
    assert len(cells) == 3 * 4  # fast 5/10/20 down, slow 10..40 across
    best = done_grid.summary["best"]
    assert f"{best['score']:,.3f}" in cells
    assert cells.count("\u2013") == 3  # the refused fast >= slow cells


def test_walk_forward_shows_is_beside_oos_and_warns_when_they_diverge(
    alice_client, done_walk_forward
):
    body = alice_client.get(f"/optimizations/{done_walk_forward.pk}/").content.decode()
    summary = done_walk_forward.summary
    assert summary["overfit"] is True
    assert 'id="overfit-warning"' in body and "likely overfit" in body.lower()
    for window in summary["windows"]:
        row = re.search(rf'<tr id="window-{window["index"]}".*?</tr>', body, re.S).group(0)
        assert f"{window['is_score']:,.3f}" in row and f"{window['oos_score']:,.3f}" in row
    # The results and heatmap show the last window's in-sample runs by default.
    assert "window 4 in-sample" in body


def test_walk_forward_without_divergence_has_no_warning(
    alice,
    alice_client,
    alice_version,
    candles,
    enqueued,
    pushes,
    django_capture_on_commit_callbacks,
):
    task = finished_walk_forward(alice, alice_version, django_capture_on_commit_callbacks)
    body = alice_client.get(f"/optimizations/{task.pk}/").content.decode()
    assert 'id="overfit-warning"' not in body and 'id="overfit-ok"' in body


def test_backtest_these_parameters_makes_a_version_and_links_to_it(
    alice_client, alice_version, done_grid
):
    row = done_grid.rows.exclude(params=alice_version.params).order_by("-score").first()
    response = alice_client.post(f"/optimizations/{done_grid.pk}/adopt/", {"row": row.number})
    version = StrategyVersion.objects.order_by("-pk").first()
    assert response.status_code == 302
    assert response["Location"] == f"/strategies/versions/{version.pk}/"
    assert (version.strategy_id, version.number) == (alice_version.strategy_id, 2)
    assert version.params == row.params
    assert f"optimisation #{done_grid.pk}" in version.note
    # The same parameters again: no duplicate version, the same link.
    again = alice_client.post(f"/optimizations/{done_grid.pk}/adopt/", {"row": row.number})
    assert again["Location"] == response["Location"]
    assert StrategyVersion.objects.count() == 2


def test_adopting_the_versions_own_parameters_links_to_the_latest_version(
    alice_client, alice_version, done_grid
):
    row = done_grid.rows.get(params=alice_version.params)
    response = alice_client.post(f"/optimizations/{done_grid.pk}/adopt/", {"row": row.number})
    assert response["Location"] == f"/strategies/versions/{alice_version.pk}/"
    assert StrategyVersion.objects.count() == 1


def test_adopting_a_row_that_does_not_exist_says_so(alice_client, done_grid):
    response = alice_client.post(f"/optimizations/{done_grid.pk}/adopt/", {"row": 999}, follow=True)
    assert "has no row 999" in response.content.decode()


def test_a_queued_task_shows_progress_and_can_be_cancelled(
    alice, alice_client, alice_version, candles, enqueued, django_capture_on_commit_callbacks
):
    task = optimization_task_create(owner=alice, data=optimization_input(alice_version))
    body = alice_client.get(f"/optimizations/{task.pk}/").content.decode()
    assert f'ws-connect="/ws/optimizations/{task.pk}/"' in body
    assert 'hx-trigger="every 1s' in body and 'id="opt-cancel"' in body
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(f"/optimizations/{task.pk}/cancel/", **HTMX)
    assert 'data-status="cancelled"' in response.content.decode()
    task.refresh_from_db()
    assert task.status == "cancelled"


def test_the_version_page_links_to_optimise_it(alice_client, alice_version):
    body = alice_client.get(f"/strategies/versions/{alice_version.pk}/").content.decode()
    assert f"/optimizations/new/?version={alice_version.pk}" in body


@pytest.mark.parametrize("suffix", ["", "progress/"])
def test_charlie_gets_404(charlie_client, done_grid, suffix):
    assert charlie_client.get(f"/optimizations/{done_grid.pk}/{suffix}").status_code == 404


def test_charlie_cannot_cancel_or_adopt(charlie_client, done_grid):
    assert charlie_client.post(f"/optimizations/{done_grid.pk}/cancel/").status_code == 404
    assert (
        charlie_client.post(f"/optimizations/{done_grid.pk}/adopt/", {"row": 0}).status_code == 404
    )
    assert StrategyVersion.objects.count() == 1


def test_a_heatmap_of_random_float_draws_is_not_drawn(
    alice, alice_client, candles, enqueued, pushes, django_capture_on_commit_callbacks
):
    rsi = make_version(
        alice, name="RSI", template="rsi_swing", period=14, oversold=30, overbought=70
    )
    space = {
        "oversold": {"random": "uniform", "min": 15, "max": 35},
        "overbought": {"random": "uniform", "min": 60, "max": 85},
    }
    data = optimization_input(rsi, method="random", samples=60, seed=3, space=space)
    task = optimization_task_create(owner=alice, data=data)
    run_chunks(task, django_capture_on_commit_callbacks)
    body = alice_client.get(f"/optimizations/{task.pk}/").content.decode()
    assert 'id="opt-heat-too-large"' in body and 'id="opt-heat"' not in body
    assert "60 \u00d7 60 values" in body
