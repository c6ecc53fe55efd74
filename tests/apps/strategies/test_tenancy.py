"""SEC-5 for this app's routes: the shared walker's check, run on our routes alone.

tests/test_tenant_isolation.py covers every route; this keeps the strategies routes
checked on their own, with every method and a body, and nothing changing.
"""

import json

import pytest
from django.test import Client
from django.urls import reverse

from tests.tenancy_samples import OWNED_SAMPLES
from tests.test_tenant_isolation import METHODS, _table_snapshot, object_routes

OURS = [route for route in object_routes() if route.name.startswith(("strategies:", "api-strateg"))]


def test_the_walker_sees_every_strategies_route():
    assert {route.name for route in OURS} == {
        "strategies:detail",
        "strategies:edit",
        "strategies:archive",
        "strategies:version_detail",
        "api-strategy-detail",
        "api-strategy-version-create",
        "api-strategy-version-detail",
    }


@pytest.mark.django_db
@pytest.mark.parametrize("route", OURS, ids=lambda r: r.name)
def test_a_stranger_gets_404_and_nothing_changes(route, alice, charlie):
    url = reverse(route.name, kwargs={k: OWNED_SAMPLES[k](alice) for k in route.kwargs})
    stranger = Client()
    stranger.force_login(charlie)  # before the snapshot: logging in sets last_login
    before = _table_snapshot()
    statuses = {}
    for method in METHODS:
        if method == "get":
            response = stranger.get(url)
        else:
            response = getattr(stranger, method)(url, json.dumps({}), "application/json")
        statuses[method] = response.status_code
        assert response.status_code in (404, 405), f"{method.upper()} {url}"
    assert 404 in statuses.values()
    assert _table_snapshot() == before
    owner = Client()
    owner.force_login(alice)
    assert owner.get(url).status_code in (200, 302, 405)
