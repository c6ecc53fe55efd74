"""The progress websocket: owner only, current state on connect, pushes after commit."""

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from apps.backtests.models import BacktestTask
from apps.backtests.progress import progress_state, publish_progress
from config.routing import websocket_urlpatterns


def as_user(user):
    router = URLRouter(websocket_urlpatterns)

    async def app(scope, receive, send):
        # What AuthMiddlewareStack puts in the scope after reading the session cookie.
        return await router({**scope, "user": user}, receive, send)

    return app


def make_task(owner) -> BacktestTask:
    from datetime import UTC, datetime

    return BacktestTask.objects.create(
        owner=owner,
        name="Live",
        exchange="binance",
        start=datetime(2021, 1, 1, tzinfo=UTC),
        end=datetime(2021, 2, 1, tzinfo=UTC),
        status=BacktestTask.Status.RUNNING,
        progress=40,
    )


async def _connect(user, task_id):
    communicator = WebsocketCommunicator(as_user(user), f"/ws/backtests/{task_id}/")
    connected, _ = await communicator.connect()
    return communicator, connected


@pytest.mark.django_db(transaction=True)
def test_charlie_cannot_subscribe_to_alices_task(alice, charlie):
    task = make_task(alice)

    async def scenario():
        communicator, connected = await _connect(charlie, task.pk)
        await communicator.disconnect()
        return connected

    assert async_to_sync(scenario)() is False


@pytest.mark.django_db(transaction=True)
def test_an_anonymous_visitor_is_closed(alice):
    from django.contrib.auth.models import AnonymousUser

    task = make_task(alice)

    async def scenario():
        communicator, connected = await _connect(AnonymousUser(), task.pk)
        await communicator.disconnect()
        return connected

    assert async_to_sync(scenario)() is False


@pytest.mark.django_db(transaction=True)
def test_alice_gets_the_current_state_then_each_push(alice):
    task = make_task(alice)

    async def scenario():
        communicator, connected = await _connect(alice, task.pk)
        assert connected
        first = await communicator.receive_from(timeout=5)
        state = {**await _state(task), "progress": 80, "pairs_done": 1}
        await _publish(state)
        second = await communicator.receive_from(timeout=5)
        await communicator.disconnect()
        return first, second

    first, second = async_to_sync(scenario)()
    assert 'id="bt-progress"' in first and 'data-progress="40"' in first
    assert 'data-progress="80"' in second and "1 of 0 pair" in second


async def _state(task):
    from channels.db import database_sync_to_async

    return await database_sync_to_async(progress_state)(task)


async def _publish(state):
    from asgiref.sync import sync_to_async

    await sync_to_async(publish_progress)(state)
