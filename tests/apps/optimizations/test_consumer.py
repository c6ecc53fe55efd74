"""The progress websocket: owner only, current state on connect, pushes after that."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from apps.optimizations.models import OptimizationTask
from apps.optimizations.progress import progress_state, publish_progress
from config.routing import websocket_urlpatterns
from tests.tenancy_samples import OWNED_SAMPLES

pytestmark = pytest.mark.django_db(transaction=True)


def as_user(user):
    router = URLRouter(websocket_urlpatterns)

    async def app(scope, receive, send):
        # What AuthMiddlewareStack puts in the scope after reading the session cookie.
        return await router({**scope, "user": user}, receive, send)

    return app


def make_task(owner) -> OptimizationTask:
    task_id = OWNED_SAMPLES["optimization_id"](owner)
    OptimizationTask.objects.filter(pk=task_id).update(
        progress=40, chunk_count=5, chunks_done=2, job_count=10
    )
    return OptimizationTask.objects.get(pk=task_id)


def connected(user, task_id) -> bool:
    async def scenario():
        communicator = WebsocketCommunicator(as_user(user), f"/ws/optimizations/{task_id}/")
        ok, _ = await communicator.connect()
        await communicator.disconnect()
        return ok

    return async_to_sync(scenario)()


def test_charlie_and_anonymous_visitors_are_closed(alice, charlie):
    from django.contrib.auth.models import AnonymousUser

    task = make_task(alice)
    assert connected(charlie, task.pk) is False
    assert connected(AnonymousUser(), task.pk) is False


def test_alice_gets_the_current_state_then_each_push(alice):
    task = make_task(alice)

    async def scenario():
        communicator = WebsocketCommunicator(as_user(alice), f"/ws/optimizations/{task.pk}/")
        ok, _ = await communicator.connect()
        assert ok
        first = await communicator.receive_from(timeout=5)
        state = await database_sync_to_async(progress_state)(task)
        await sync_to_async(publish_progress)({**state, "progress": 80, "chunks_done": 4})
        second = await communicator.receive_from(timeout=5)
        await communicator.disconnect()
        return first, second

    first, second = async_to_sync(scenario)()
    assert 'id="opt-progress"' in first and 'data-progress="40"' in first
    assert "2 of 5 chunks done" in first
    assert 'data-progress="80"' in second and "4 of 5 chunks done" in second
