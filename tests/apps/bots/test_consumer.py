"""The bot-card websocket: the owner receives every pushed card (on the bot's page and on
the list), a stranger or an anonymous visitor cannot subscribe."""

from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from apps.bots import push
from apps.bots.models import BotRun
from apps.bots.push import CardRef, bot_push, bot_push_on_commit, bots_push
from config.routing import websocket_urlpatterns
from tests.apps.bots.conftest import make_bot, store_candles


def as_user(user):
    router = URLRouter(websocket_urlpatterns)

    async def app(scope, receive, send):
        # What AuthMiddlewareStack puts in the scope after reading the session cookie.
        return await router({**scope, "user": user}, receive, send)

    return app


def running_bot(owner, version=None, *, name="Paper SMA"):
    if version is None:
        store_candles()
    bot = make_bot(owner, version, name=name)
    run = BotRun.objects.create(
        bot=bot,
        status=BotRun.Status.RUNNING,
        equity_start=Decimal(10_000),
        equity_last=Decimal(10_250),
        ticks_done=7,
    )
    return bot, run


async def _connect(user, path):
    communicator = WebsocketCommunicator(as_user(user), path)
    connected, _ = await communicator.connect()
    return communicator, connected


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("who", ["charlie", "anonymous"])
def test_a_stranger_cannot_subscribe_to_alices_bot(alice, charlie, who):
    bot, _run = running_bot(alice)
    user = charlie if who == "charlie" else AnonymousUser()

    async def scenario():
        communicator, connected = await _connect(user, f"/ws/bots/{bot.pk}/")
        await communicator.disconnect()
        return connected

    assert async_to_sync(scenario)() is False


@pytest.mark.django_db(transaction=True)
def test_a_push_reaches_the_owner_on_the_bot_page_and_the_list(alice, charlie):
    bot, run = running_bot(alice)

    async def scenario():
        page, page_ok = await _connect(alice, f"/ws/bots/{bot.pk}/")
        listing, list_ok = await _connect(alice, "/ws/bots/")
        strangers_list, stranger_ok = await _connect(charlie, "/ws/bots/")
        assert page_ok and list_ok and stranger_ok
        await sync_to_async(bot_push)(run.pk)
        received = (await page.receive_from(timeout=5), await listing.receive_from(timeout=5))
        stranger_got_nothing = await strangers_list.receive_nothing(timeout=0.3)
        for communicator in (page, listing, strangers_list):
            await communicator.disconnect()
        return received, stranger_got_nothing

    (on_page, on_list), stranger_got_nothing = async_to_sync(scenario)()
    for html in (on_page, on_list):
        assert html.startswith(f'<article id="bot-card-{bot.pk}"')
        assert "10,250.00" in html and "250.00" in html and "7 done" in html
    assert stranger_got_nothing


@pytest.mark.django_db
def test_the_push_waits_for_the_commit(alice, django_capture_on_commit_callbacks, monkeypatch):
    _bot, run = running_bot(alice)
    sent = []
    monkeypatch.setattr("apps.bots.push.bot_push", sent.append)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        bot_push_on_commit(run.pk)
        assert sent == []

    assert len(callbacks) == 1 and sent == [run.pk]


def card_of(run):
    return CardRef(run.pk, run.bot_id, run.bot.owner_id)


@pytest.mark.django_db(transaction=True)
def test_a_batch_push_renders_and_sends_only_the_cards_someone_watches(alice, monkeypatch):
    watched_bot, watched = running_bot(alice)
    _other, other = running_bot(alice, watched_bot.strategy_version, name="Unwatched")
    rendered = []
    render = push.bot_card_render
    monkeypatch.setattr(
        "apps.bots.push.bot_card_render",
        lambda *, card: rendered.append(card["bot"].pk) or render(card=card),
    )

    async def scenario():
        page, page_ok = await _connect(alice, f"/ws/bots/{watched_bot.pk}/")
        assert page_ok
        await sync_to_async(bots_push)([card_of(watched), card_of(other)])
        html = await page.receive_from(timeout=5)
        nothing_else = await page.receive_nothing(timeout=0.3)
        await page.disconnect()
        return html, nothing_else

    html, nothing_else = async_to_sync(scenario)()
    assert html.startswith(f'<article id="bot-card-{watched_bot.pk}"') and nothing_else
    assert rendered == [watched_bot.pk]


@pytest.mark.django_db(transaction=True)
def test_a_batch_push_nobody_watches_renders_nothing(alice, monkeypatch):
    _bot, run = running_bot(alice)
    rendered = []
    monkeypatch.setattr("apps.bots.push.bot_card_render", lambda *, card: rendered.append(card))

    bots_push([card_of(run)])

    assert rendered == []
