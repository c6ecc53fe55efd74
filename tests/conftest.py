"""Shared fixtures: alice owns things, charlie is a stranger (house style §3.11)."""

import pytest
from django.test import Client

from tests.factories import UserFactory

PASSWORD = "correct-horse-battery-staple-42"


@pytest.fixture
def alice(db):
    return UserFactory(email="alice@example.com", password=PASSWORD)


@pytest.fixture
def charlie(db):
    return UserFactory(email="charlie@example.com", password=PASSWORD)


@pytest.fixture
def alice_client(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture
def charlie_client(charlie) -> Client:
    client = Client()
    client.force_login(charlie)
    return client


@pytest.fixture(autouse=True)
def _clear_cache():
    # The cache is real Redis shared by xdist workers; keep each test's keys its own.
    from django.core.cache import cache

    cache.clear()
    yield
