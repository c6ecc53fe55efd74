"""The REST API: list/create, retrieve with versions, create a version; 400s name the path."""

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.strategies.models import Strategy, StrategyVersion
from apps.strategies.specs import EXAMPLE_SCRIPT
from tests.apps.strategies.conftest import CROSS_ENTRY, CROSS_EXIT, sma

pytestmark = pytest.mark.django_db
LIST = reverse("api-strategies")


def _post(client, url, body):
    return client.post(url, body, content_type="application/json")


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "template", "template": "macd", "params": {"fast": 8}},
        {"kind": "conditions", "entry": CROSS_ENTRY, "exit": CROSS_EXIT},
        {"kind": "script", "script": EXAMPLE_SCRIPT, "params": {"fast": 10, "slow": 30}},
    ],
    ids=lambda body: body["kind"],
)
def test_it_creates_each_kind(alice_client, body):
    response = _post(alice_client, LIST, {"name": "Mine", **body})
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["kind"] == body["kind"]
    assert data["versions"][0]["number"] == 1
    listed = alice_client.get(LIST).json()
    assert [(s["name"], s["latest_number"]) for s in listed] == [("Mine", 1)]


def test_an_invalid_tree_is_a_400_naming_the_path(alice_client):
    entry = {
        "all": [
            {"left": sma(10), "op": "crosses_above", "right": sma(30)},
            {"left": sma(10), "op": "above", "right": {"field": "closing"}},
        ]
    }
    response = _post(
        alice_client, LIST, {"name": "X", "kind": "conditions", "entry": entry, "exit": CROSS_EXIT}
    )
    assert response.status_code == 400
    paths = [error["path"] for error in response.json()["errors"]]
    assert paths == ["entry.all[1].op", "entry.all[1].right.field"]
    assert not Strategy.objects.exists()
    assert not AuditEvent.objects.filter(event_type__startswith="strategy.").exists()


def test_a_missing_field_is_a_400_naming_it(alice_client):
    response = _post(alice_client, LIST, {"kind": "template", "template": "sma_cross"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "name"


def test_a_template_param_out_of_range_is_named(alice_client):
    response = _post(
        alice_client,
        LIST,
        {"name": "X", "kind": "template", "template": "dca", "params": {"slice": 2}},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "params.slice"


def test_it_retrieves_a_strategy_with_its_versions_and_adds_one(alice_client, cross_strategy):
    url = reverse("api-strategy-version-create", args=[cross_strategy.pk])
    faster = {"all": [{"left": sma(8), "op": "crosses_above", "right": sma(30)}]}
    created = _post(alice_client, url, {"entry": faster, "exit": CROSS_EXIT, "note": "faster"})
    assert created.status_code == 201
    assert created.json()["version"]["number"] == 2

    same = _post(alice_client, url, {"entry": faster, "exit": CROSS_EXIT})
    assert same.status_code == 200
    assert same.json()["created"] is False
    assert same.json()["version"]["number"] == 2

    bad = _post(alice_client, url, {"entry": faster, "exit": {"any": []}})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["path"] == "exit.any"

    detail = alice_client.get(reverse("api-strategy-detail", args=[cross_strategy.pk])).json()
    assert [v["number"] for v in detail["versions"]] == [2, 1]
    assert detail["versions"][1]["entry"] == CROSS_ENTRY
    version = StrategyVersion.objects.get(number=2)
    one = alice_client.get(reverse("api-strategy-version-detail", args=[version.pk])).json()
    assert one["note"] == "faster"


def test_charlie_gets_404_on_every_api_route_of_alices_strategy(charlie_client, cross_strategy):
    version = cross_strategy.versions.get()
    detail = reverse("api-strategy-detail", args=[cross_strategy.pk])
    create = reverse("api-strategy-version-create", args=[cross_strategy.pk])
    one = reverse("api-strategy-version-detail", args=[version.pk])
    assert charlie_client.get(detail).status_code == 404
    assert charlie_client.get(one).status_code == 404
    body = {"entry": {"any": CROSS_ENTRY["all"]}, "exit": CROSS_EXIT}
    assert _post(charlie_client, create, body).status_code == 404
    assert cross_strategy.versions.count() == 1
    assert charlie_client.get(LIST).json() == []


def test_the_api_needs_a_login(client, cross_strategy):
    assert client.get(LIST).status_code in (401, 403)
