"""Personal API tokens: shown once, stored hashed, quota-limited, revocable, owner-only."""

import hashlib
import json
import re

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from apps.accounts.models import ApiToken
from tests.apps.accounts.conftest import audit_events

# MeApi is served from a test URLconf until config/api_urls.py mounts it at api/me/.
pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.apps.accounts.urls")]
TOKENS = reverse("accounts:tokens")
ME = "/api/me/"
RAW_TOKEN = re.compile(r"<code>(tl_[A-Za-z0-9_-]{40,})</code>")


def _create(client, name="laptop script", **extra):
    return client.post(TOKENS, {"name": name}, **extra)


def _created_raw(response) -> str:
    match = RAW_TOKEN.search(response.content.decode())
    assert match, "the new token must be shown"
    return match.group(1)


def _me(raw: str):
    return Client().get(ME, HTTP_AUTHORIZATION=f"Bearer {raw}")


def _revoke_url(token) -> str:
    return reverse("accounts:token_revoke", kwargs={"token_id": token.pk})


def test_the_empty_state_explains_what_to_do(alice_client):
    page = alice_client.get(TOKENS).content.decode()
    assert "You have no API tokens yet." in page


def test_a_new_token_is_shown_once_and_only_its_hash_is_stored(alice_client, alice):
    response = _create(alice_client)

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    page = response.content.decode()
    assert "Copy it now, it will not be shown again." in page
    raw = _created_raw(response)
    token = ApiToken.objects.get(user=alice)
    assert token.name == "laptop script"
    assert token.prefix == raw[:12]
    assert token.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(t)::text FROM accounts_apitoken t")
        assert raw not in cursor.fetchone()[0]
    later = alice_client.get(TOKENS).content.decode()
    assert raw not in later
    assert f"{token.prefix}…" in later
    [event] = audit_events("api_token.created")
    assert event.data == {"token_id": token.pk, "name": "laptop script", "prefix": token.prefix}
    assert raw not in json.dumps(event.data)


def test_a_token_authenticates_the_api_as_its_owner(alice_client, alice):
    raw = _created_raw(_create(alice_client))

    response = _me(raw)

    assert response.status_code == 200
    assert response.json() == {
        "id": alice.pk,
        "email": "alice@example.com",
        "display_name": "",
        "max_bots": alice.max_bots,
        "max_exchange_accounts": alice.max_exchange_accounts,
        "max_api_tokens": alice.max_api_tokens,
    }
    assert ApiToken.objects.get(user=alice).last_used_at is not None


def test_a_wrong_or_missing_token_gets_401(alice_client):
    raw = _created_raw(_create(alice_client))

    assert _me(raw[:-1] + ("A" if raw[-1] != "A" else "B")).status_code == 401
    assert Client().get(ME).status_code in (401, 403)


def test_a_revoked_token_gets_401(alice_client, alice):
    raw = _created_raw(_create(alice_client))
    token = ApiToken.objects.get(user=alice)
    assert _me(raw).status_code == 200

    response = alice_client.post(_revoke_url(token))

    assert response.status_code == 302
    assert response["Location"] == TOKENS
    assert _me(raw).status_code == 401
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert audit_events("api_token.revoked").get().actor_id == alice.pk
    assert "revoked" in alice_client.get(TOKENS).content.decode()


def test_revoking_needs_a_post(alice_client, alice):
    _create(alice_client)
    token = ApiToken.objects.get(user=alice)

    assert alice_client.get(_revoke_url(token)).status_code == 405
    token.refresh_from_db()
    assert token.is_active


def test_charlie_cannot_revoke_alices_token(alice_client, charlie_client, alice):
    raw = _created_raw(_create(alice_client))
    token = ApiToken.objects.get(user=alice)

    response = charlie_client.post(_revoke_url(token))

    assert response.status_code == 404
    token.refresh_from_db()
    assert token.is_active
    assert _me(raw).status_code == 200
    assert not audit_events("api_token.revoked").exists()
    assert token.prefix not in charlie_client.get(TOKENS).content.decode()


def test_the_quota_counts_active_tokens_and_gives_a_clear_error(alice_client, alice):
    alice.max_api_tokens = 2
    alice.save(update_fields=["max_api_tokens"])
    _create(alice_client, "one")
    _create(alice_client, "two")

    refused = _create(alice_client, "three")

    page = refused.content.decode()
    assert "You already have 2 active API tokens, your limit." in page
    assert "contact an operator" in page
    assert RAW_TOKEN.search(page) is None
    assert ApiToken.objects.filter(user=alice).count() == 2
    assert audit_events("api_token.created").count() == 2

    alice_client.post(_revoke_url(ApiToken.objects.get(name="one")))
    assert RAW_TOKEN.search(_create(alice_client, "three").content.decode())


def test_a_blank_name_is_refused(alice_client, alice):
    response = _create(alice_client, "   ")

    assert "This field is required." in response.content.decode()
    assert not ApiToken.objects.exists()


def test_htmx_requests_get_only_the_token_panel(alice_client, alice):
    response = _create(alice_client, HTTP_HX_REQUEST="true")

    page = response.content.decode()
    assert page.lstrip().startswith('<div id="token-panel">')
    assert "<h1>" not in page
    raw = _created_raw(response)
    token = ApiToken.objects.get(user=alice)

    revoked = alice_client.post(_revoke_url(token), HTTP_HX_REQUEST="true")

    assert revoked.status_code == 200
    assert revoked.content.decode().lstrip().startswith('<div id="token-panel">')
    assert raw not in revoked.content.decode()
    assert _me(raw).status_code == 401
