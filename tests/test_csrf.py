"""SEC-2: every route refuses an unsafe request without a CSRF token and accepts one with it.

Routes are enumerated from the URLconf, so a new view is covered the day it is added. The
only views allowed to skip CSRF are token-authenticated webhooks, listed in CSRF_EXEMPT.
"""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.crypto import get_random_string

from tests.tenancy_samples import NOT_OBJECT_SCOPED, OWNED_SAMPLES
from tests.urlconf import url_routes

CSRF_EXEMPT: set[str] = {"hooks:tradingview"}


def csrf_routes() -> list[tuple[str, tuple[str, ...]]]:
    # Signed one-time links (password reset) cannot be sampled without the token machinery.
    return sorted(
        {
            (route.name, route.kwargs)
            for route in url_routes()
            if route.name
            and not route.pattern.startswith("admin/")
            and not (set(route.kwargs) & set(NOT_OBJECT_SCOPED))
        }
    )


def test_the_walker_sees_the_routes():
    names = {name for name, _ in csrf_routes()}
    assert {"accounts:login", "exchanges:create", "healthz"} <= names


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "kwargs"), csrf_routes(), ids=lambda v: str(v))
def test_unsafe_requests_need_the_csrf_token(name, kwargs, alice):
    url = reverse(name, kwargs={kwarg: OWNED_SAMPLES[kwarg](alice) for kwarg in kwargs})
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    without = client.post(url, {})
    if name in CSRF_EXEMPT:
        assert without.status_code != 403
        return
    assert without.status_code == 403, f"POST {url} without a CSRF token -> {without.status_code}"

    token = get_random_string(
        32
    )  # an unmasked secret is a valid token when cookie and header agree
    client.cookies["csrftoken"] = token
    with_token = client.post(url, {}, HTTP_X_CSRFTOKEN=token)
    assert with_token.status_code != 403 or b"CSRF" not in with_token.content, (
        f"POST {url} with a CSRF token was refused as CSRF"
    )
