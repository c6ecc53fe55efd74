"""Landing page, first-run dashboard and the shared base template."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.db import transaction
from django.test import Client
from django.urls import reverse

from apps.audit.services import audit_record
from apps.exchanges.models import ExchangeAccount
from apps.strategies.models import Strategy

pytestmark = pytest.mark.django_db
LANDING = reverse("dashboard:landing")
HOME = reverse("dashboard:home")
HX_HEADERS = re.compile(r"""<body hx-headers='\{"X-CSRFToken": "([A-Za-z0-9]+)"\}'>""")


def test_an_anonymous_visitor_sees_the_landing_page(client):
    response = client.get(LANDING)

    content = response.content.decode()
    assert response.status_code == 200
    assert "Setup → Operate → Adjust" in content
    assert f'href="{reverse("accounts:signup")}" role="button">Sign up</a>' in content
    assert f'href="{reverse("accounts:login")}"' in content
    assert "Log out" not in content


def test_a_logged_in_user_on_the_landing_page_goes_to_the_dashboard(alice_client):
    response = alice_client.get(LANDING)

    assert response.status_code == 302
    assert response["Location"] == HOME


def test_the_dashboard_requires_login(client):
    response = client.get(HOME)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('accounts:login')}?next={HOME}"


def test_the_dashboard_refuses_post(alice_client):
    assert alice_client.post(HOME).status_code == 405


def test_a_new_user_is_asked_to_connect_an_exchange(alice_client):
    content = alice_client.get(HOME).content.decode()

    create_url = reverse("exchanges:create")
    assert re.search(rf'<a href="{create_url}" role="button"[^>]*>Connect an exchange</a>', content)
    assert "Recent activity" not in content


def test_the_first_run_checklist_marks_nothing_done(alice_client):
    content = alice_client.get(HOME).content.decode()

    assert content.count('<li class="todo">') == 3
    assert '<li class="done">' not in content


def test_the_logged_in_nav_has_setup_operate_and_adjust(alice_client):
    content = alice_client.get(HOME).content.decode()

    for group in ("Setup", "Operate", "Adjust"):
        assert f'<ul class="nav-group" aria-label="{group}">' in content
    for name in (
        "exchanges:list",
        "accounts:tokens",
        "accounts:profile",
        "dashboard:home",
        "bots:list",
        "signals:list",
        "dashboard:activity",
    ):
        assert f'href="{reverse(name)}"' in content
    assert "alice@example.com" in content
    assert f'action="{reverse("accounts:logout")}"' in content


def test_the_nav_marks_the_current_page(alice_client):
    content = alice_client.get(HOME).content.decode()

    assert f'<a href="{HOME}" aria-current="page">Dashboard</a>' in content
    signals = alice_client.get(reverse("signals:list")).content.decode()
    assert f'<a href="{reverse("signals:list")}" aria-current="page">Signals</a>' in signals


def test_the_body_carries_a_csrf_token_that_the_server_accepts(alice):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    token = HX_HEADERS.search(browser.get(HOME).content.decode()).group(1)

    refused = browser.post(reverse("accounts:logout"))
    accepted = browser.post(reverse("accounts:logout"), headers={"X-CSRFToken": token})

    assert refused.status_code == 403
    assert accepted.status_code == 302


def test_every_script_and_stylesheet_is_served_from_our_static_files(client):
    content = client.get(LANDING).content.decode()

    assets = re.findall(r'(?:src|href)="/static/([^"]+)"', content)
    assert {
        "js/htmx-2.0.11.min.js",
        "js/htmx-ext-ws-2.0.4.js",
        "js/app.js",
        "css/pico-2.1.1.min.css",
        "css/app.css",
    } <= set(assets)
    for asset in assets:
        assert finders.find(asset), f"{asset} is referenced but not in static/"
    assert "://" not in "".join(re.findall(r"<(?:script|link)[^>]+>", content))


@pytest.mark.urls("tests.apps.dashboard.urls")
def test_messages_are_shown_as_alerts(client):
    response = client.get("/test-only/message/", follow=True)

    alert = '<article role="alert" class="message message-success">Exchange connected.</article>'
    assert alert in response.content.decode()


def _record(*, owner, event_type: str):
    with transaction.atomic():
        audit_record(event_type=event_type, actor=owner, owner=owner, target=owner)


def _stat(content: str, label: str) -> int:
    match = re.search(rf"<small>{label}</small>\s*<strong>(\d+)</strong>", content)
    assert match, f"no {label} card"
    return int(match.group(1))


def _connect(owner, mode: str, label: str = "main") -> ExchangeAccount:
    return ExchangeAccount.objects.create(owner=owner, exchange="binance", label=label, mode=mode)


def test_a_set_up_user_sees_their_accounts_counted_by_mode(alice, charlie, alice_client):
    _connect(alice, "paper", "paper one")
    _connect(alice, "paper", "paper two")
    _connect(alice, "live", "live")
    _connect(charlie, "testnet")

    content = alice_client.get(HOME).content.decode()

    assert _stat(content, "Exchange accounts") == 3
    assert (_stat(content, "Paper"), _stat(content, "Testnet"), _stat(content, "Live")) == (2, 0, 1)
    assert "Connect an exchange</a>" not in content
    assert content.count('<li class="done">') == 1


def test_the_dashboard_shows_the_latest_ten_of_the_users_own_events(alice, charlie, alice_client):
    _connect(alice, "paper")
    for number in range(12):
        _record(owner=alice, event_type=f"step.{number:02d}")
    _record(owner=charlie, event_type="charlie.event")

    content = alice_client.get(HOME).content.decode()

    listed = re.findall(r"<td><code>([^<]+)</code></td>", content)
    assert listed == [f"step.{number:02d}" for number in range(11, 1, -1)]
    assert f'href="{reverse("dashboard:activity")}"' in content


def test_the_checklist_counts_only_the_users_own_strategies(alice, charlie, alice_client):
    Strategy.objects.create(owner=charlie, name="charlie's", kind="template")
    before = alice_client.get(HOME).content.decode()
    Strategy.objects.create(owner=alice, name="sma cross", kind="template")
    after = alice_client.get(HOME).content.decode()

    assert '<li class="done">' not in before
    assert after.count('<li class="done">') == 1
    assert re.search(r'<li class="done">.*?<strong>Build a strategy</strong>', after, re.DOTALL)
