"""SEC-5: every route that takes an object id answers 404 to a stranger and changes nothing.

The URLconf is walked, tock-style: a route with a keyword argument must either map to a
sample owned by alice (OWNED_SAMPLES) or be listed as not object-scoped (NOT_OBJECT_SCOPED)
with a reason. A new route that is neither fails this suite, so it cannot escape the check.
"""

import hashlib
import json
from collections.abc import Callable

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from django.urls import reverse

from tests.tenancy_samples import NOT_OBJECT_SCOPED, OWNED_SAMPLES
from tests.urlconf import Route, url_routes

# Namespaces that are staff-only; checked separately (non-staff is sent to the login page).
STAFF_ONLY_PREFIXES = ("admin/",)
METHODS = ("get", "post", "put", "patch", "delete")


def object_routes() -> list[Route]:
    return [
        route
        for route in url_routes()
        if route.kwargs
        and not route.pattern.startswith(STAFF_ONLY_PREFIXES)
        and any(kwarg not in NOT_OBJECT_SCOPED for kwarg in route.kwargs)
    ]


def _table_snapshot() -> str:
    """A hash of every row of every table of our apps: proof that nothing changed."""
    digest = hashlib.sha256()
    with connection.cursor() as cursor:
        for model in apps.get_models():
            if not model.__module__.startswith("apps.") or model._meta.label == "audit.AuditEvent":
                continue
            table = model._meta.db_table
            cursor.execute(f'SELECT row_to_json(t)::text FROM "{table}" t ORDER BY 1')  # noqa: S608
            for (row,) in cursor.fetchall():
                digest.update(row.encode())
    return digest.hexdigest()


def test_every_object_route_has_a_stranger_sample():
    unnamed = [r.pattern for r in object_routes() if not r.name]
    missing = sorted(
        f"{r.name} ({r.pattern}): {kwarg}"
        for r in object_routes()
        for kwarg in r.kwargs
        if kwarg not in OWNED_SAMPLES and kwarg not in NOT_OBJECT_SCOPED
    )
    assert unnamed == [], "routes with object ids must be named"
    assert missing == [], "add a sample to tests/tenancy_samples.py for each of these"


def test_the_walker_finds_the_routes_it_guards():
    # Guards against the walker silently finding nothing.
    names = {route.name for route in object_routes()}
    assert {"exchanges:detail", "accounts:token_revoke"} <= names


@pytest.mark.django_db
@pytest.mark.parametrize("route", object_routes(), ids=lambda r: r.name)
def test_a_stranger_gets_404_on_every_method_and_nothing_changes(route, alice, charlie):
    samples: dict[str, Callable] = {kwarg: OWNED_SAMPLES[kwarg] for kwarg in route.kwargs}
    url_kwargs = {kwarg: make(alice) for kwarg, make in samples.items()}
    url = reverse(route.name, kwargs=url_kwargs)
    stranger = Client()
    stranger.force_login(charlie)  # updates charlie's last_login, so snapshot after it
    before = _table_snapshot()
    statuses = {}
    for method in METHODS:
        send = getattr(stranger, method)
        if method == "get":
            response = send(url)
        else:
            response = send(url, data=json.dumps({}), content_type="application/json")
        statuses[method] = response.status_code
        # 405 only means the method is not served at all; anything else must be 404.
        assert response.status_code in (404, 405), (
            f"{method.upper()} {url} -> {response.status_code}"
        )
    assert 404 in statuses.values(), f"{url} never looked the object up: {statuses}"
    assert _table_snapshot() == before

    owner = Client()
    owner.force_login(alice)
    assert owner.get(url).status_code in (200, 302, 405), (
        "the sample must be reachable by its owner"
    )


@pytest.mark.django_db
def test_non_staff_users_are_sent_to_the_admin_login(charlie_client):
    for path in ("/admin/", "/admin/exchanges/exchangeaccount/", "/admin/audit/auditevent/"):
        response = charlie_client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
