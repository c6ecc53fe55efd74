"""The activity page: the user's own audit events, newest first, paginated, filterable."""

import re

import pytest
from django.db import transaction
from django.urls import reverse

from apps.audit.services import audit_record

pytestmark = pytest.mark.django_db
ACTIVITY = reverse("dashboard:activity")
EVENT_TYPE_CELL = re.compile(r"<td><code>([^<]+)</code></td>")


def _record(*, owner, event_type: str, actor=None):
    with transaction.atomic():
        return audit_record(event_type=event_type, actor=actor or owner, owner=owner, target=owner)


def _listed_event_types(response) -> list[str]:
    return EVENT_TYPE_CELL.findall(response.content.decode())


def test_it_lists_only_the_users_own_events(alice, charlie, alice_client):
    _record(owner=alice, event_type="exchange.connected")
    _record(owner=charlie, event_type="bot.started")
    _record(owner=None, event_type="system.maintenance", actor=None)

    response = alice_client.get(ACTIVITY)

    assert response.status_code == 200
    listed = _listed_event_types(response)
    assert "exchange.connected" in listed
    assert "bot.started" not in listed
    assert "system.maintenance" not in listed
    assert "charlie@example.com" not in response.content.decode()


def test_events_are_listed_newest_first(alice, alice_client):
    for event_type in ("first.event", "second.event", "third.event"):
        _record(owner=alice, event_type=event_type)

    listed = _listed_event_types(alice_client.get(ACTIVITY))

    assert listed[:3] == ["third.event", "second.event", "first.event"]


def test_it_shows_time_target_and_actor_columns(alice, alice_client):
    event = _record(owner=alice, event_type="profile.updated")

    content = alice_client.get(ACTIVITY).content.decode()

    assert "Time (UTC)" in content
    assert event.occurred_at.strftime("%Y-%m-%d %H:%M:%S") in content
    assert f"accounts.user <small>#{alice.pk}</small>" in content
    assert "<td>alice@example.com</td>" in content


def test_it_pages_25_events_at_a_time(alice, alice_client):
    # Logging in already wrote one event, so 30 more make 31: a full page and 6 more.
    for number in range(30):
        _record(owner=alice, event_type=f"step.{number:02d}")

    first = alice_client.get(ACTIVITY)
    second = alice_client.get(ACTIVITY, {"page": 2})

    assert _listed_event_types(first)[0] == "step.29"
    assert len(_listed_event_types(first)) == 25
    assert 'href="?page=2"' in first.content.decode()
    assert len(_listed_event_types(second)) == 6
    assert _listed_event_types(second)[-1] == "user.logged_in"
    assert set(_listed_event_types(first)).isdisjoint(_listed_event_types(second))


def test_it_filters_by_event_type_and_keeps_the_filter_when_paging(alice, alice_client):
    for _ in range(27):
        _record(owner=alice, event_type="order.filled")
    _record(owner=alice, event_type="bot.stopped")

    response = alice_client.get(ACTIVITY, {"event_type": "order.filled"})

    listed = _listed_event_types(response)
    assert listed == ["order.filled"] * 25
    assert 'href="?event_type=order.filled&amp;page=2"' in response.content.decode()
    second = alice_client.get(ACTIVITY, {"event_type": "order.filled", "page": 2})
    assert _listed_event_types(second) == ["order.filled"] * 2


def test_an_unknown_event_type_gets_a_clear_message_not_an_error(alice, alice_client):
    _record(owner=alice, event_type="bot.started")

    response = alice_client.get(ACTIVITY, {"event_type": "no.such-type"})

    assert response.status_code == 400
    content = response.content.decode()
    assert "“no.such-type” is not an event type in your activity" in content
    assert _listed_event_types(response) == []


def test_another_users_event_type_is_not_a_valid_filter(alice, charlie, alice_client):
    _record(owner=charlie, event_type="charlie.secret_project")

    response = alice_client.get(ACTIVITY, {"event_type": "charlie.secret_project"})

    assert response.status_code == 400
    assert _listed_event_types(response) == []


def test_the_filter_offers_only_the_users_own_event_types(alice, charlie, alice_client):
    _record(owner=alice, event_type="exchange.connected")
    _record(owner=charlie, event_type="charlie.only")

    content = alice_client.get(ACTIVITY).content.decode()

    assert '<option value="exchange.connected">' in content
    assert "charlie.only" not in content


def test_an_htmx_request_gets_only_the_events_table(alice, alice_client):
    for number in range(30):
        _record(owner=alice, event_type=f"step.{number:02d}")

    response = alice_client.get(ACTIVITY, {"page": 2}, headers={"HX-Request": "true"})

    content = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in content
    assert "<nav" in content  # the pagination comes with the table
    assert content.lstrip().startswith('<div id="events-table">')
    assert len(_listed_event_types(response)) == 6
    assert "HX-Request" in response["Vary"]


def test_pagination_links_work_with_and_without_htmx(alice, alice_client):
    for number in range(30):
        _record(owner=alice, event_type=f"step.{number:02d}")

    content = alice_client.get(ACTIVITY).content.decode()

    assert re.search(r'<a href="\?page=2" hx-get="\?page=2" hx-target="#events-table"', content)


def test_an_htmx_history_restore_gets_the_full_page(alice, alice_client):
    response = alice_client.get(
        ACTIVITY, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )

    assert "<html" in response.content.decode()


def test_the_activity_page_requires_login(client):
    response = client.get(ACTIVITY)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('accounts:login')}?next={ACTIVITY}"
