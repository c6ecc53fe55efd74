"""The REST API: create (400s name the field, writing nothing), list, detail with ranked
rows, heatmap and walk-forward windows, cancel; charlie gets 404."""

import pytest
from rest_framework.test import APIClient

from apps.optimizations.models import OptimizationTask
from apps.optimizations.services import optimization_task_create
from tests.apps.optimizations.conftest import optimization_input, run_chunks


@pytest.fixture
def api(alice) -> APIClient:
    client = APIClient()
    client.force_authenticate(alice)
    return client


@pytest.fixture
def charlie_api(charlie) -> APIClient:
    client = APIClient()
    client.force_authenticate(charlie)
    return client


def body(version, **overrides):
    data = {
        "strategy_version": version.pk,
        "symbol": "BTC/USDT",
        "timeframe": "1h",
        "start": "2020-09-01T00:00:00Z",
        "end": "2021-03-01T00:00:00Z",
        "space": {"fast": [5, 10, 20], "slow": {"min": 10, "max": 40, "step": 10}},
        "metric": "total_return",
    }
    return data | overrides


@pytest.fixture
def done_grid(alice, alice_version, candles, enqueued, pushes, django_capture_on_commit_callbacks):
    task = optimization_task_create(owner=alice, data=optimization_input(alice_version))
    run_chunks(task, django_capture_on_commit_callbacks)
    return task


def test_create_queues_the_task(
    api, alice_version, candles, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/optimizations/", body(alice_version), format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert (data["status"], data["job_count"], data["method"]) == ("queued", 9, "grid")
    assert data["taker_fee"] == "0.00100000"
    assert len(enqueued) == data["chunk_count"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"space": {"fats": [3]}}, "space.fats"),
        ({"space": {"fast": {"min": 1, "max": 9}}}, "space.fast"),
        ({"space": "fast"}, "space"),
        ({"metric": "luck"}, "metric"),
        ({"method": "walk_forward"}, "in_sample"),
        ({"symbol": "DOGE/USDT"}, "symbol"),
        ({"strategy_version": 999999}, "strategy_version"),
        ({"taker_fee": "0.5"}, "taker_fee"),
        ({"start": "yesterday"}, "start"),
    ],
)
def test_a_bad_request_is_a_400_naming_the_field(api, alice_version, candles, overrides, field):
    response = api.post("/api/optimizations/", body(alice_version, **overrides), format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert OptimizationTask.objects.count() == 0


def test_list_and_detail_with_rows_and_heatmap(api, done_grid):
    listed = api.get("/api/optimizations/").json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == done_grid.pk
    detail = api.get(f"/api/optimizations/{done_grid.pk}/?limit=3").json()
    assert detail["status"] == "done"
    done_grid.refresh_from_db()
    assert detail["summary"]["best"]["params"] == detail["rows"][0]["params"]
    scores = [row["score"] for row in detail["rows"]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    heat = detail["heatmap"]
    assert (heat["x"], heat["y"]) == ("fast", "slow")
    assert heat["x_values"] == [5, 10, 20] and len(heat["scores"]) == 4
    swapped = api.get(f"/api/optimizations/{done_grid.pk}/?x=slow&y=fast").json()["heatmap"]
    assert swapped["x_values"] == [10, 20, 30, 40]
    only_x = api.get(f"/api/optimizations/{done_grid.pk}/?x=slow").json()["heatmap"]
    assert (only_x["x"], only_x["y"]) == ("slow", "fast")
    refused = api.get(f"/api/optimizations/{done_grid.pk}/?x=period")
    assert refused.status_code == 400 and "period" in refused.json()


def test_cancel(api, alice, alice_version, candles, enqueued):
    task = optimization_task_create(owner=alice, data=optimization_input(alice_version))
    response = api.post(f"/api/optimizations/{task.pk}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"


def test_charlie_gets_404(charlie_api, done_grid):
    assert charlie_api.get(f"/api/optimizations/{done_grid.pk}/").status_code == 404
    assert charlie_api.post(f"/api/optimizations/{done_grid.pk}/cancel/").status_code == 404
    assert charlie_api.get("/api/optimizations/").json()["count"] == 0
    done_grid.refresh_from_db()
    assert done_grid.status == "done"
