"""Operators see strategies with a read-only versions inline."""

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client():
    operator = UserFactory(email="ops@example.com", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(operator)
    return client


def test_the_changelist_shows_owner_kind_and_version_count(operator_client, cross_strategy):
    url = reverse("admin:strategies_strategy_changelist")
    response = operator_client.get(url, {"q": "alice@example.com", "kind__exact": "conditions"})
    assert response.status_code == 200
    assert "Cross" in response.text
    assert "alice@example.com" in response.text


def test_the_versions_inline_is_read_only(operator_client, cross_strategy):
    url = reverse("admin:strategies_strategy_change", args=[cross_strategy.pk])
    response = operator_client.get(url)
    assert response.status_code == 200
    assert cross_strategy.versions.get().content_hash in response.text
    assert 'name="versions-0-note"' not in response.text
    assert operator_client.get(reverse("admin:strategies_strategy_add")).status_code == 403
