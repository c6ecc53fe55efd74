"""/healthz through the HTTP client: real PostgreSQL, real Redis, heartbeats as Redis keys."""

import socket
import time

import pytest

pytestmark = pytest.mark.django_db


def write_heartbeat(client, prefix: str, kind: str, age_seconds: float) -> None:
    client.set(f"{prefix}:heartbeat:{kind}", f"{time.time() - age_seconds:.3f}", ex=600)


def get_health(client):
    response = client.get("/healthz")
    return response.status_code, response.json()


def test_no_heartbeats_is_503_with_worker_and_beat_down(client, health_redis):
    status, body = get_health(client)

    assert status == 503
    assert body["status"] == "degraded"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["redis"] == {"ok": True}
    for kind in ("worker", "beat"):
        assert body["checks"][kind]["ok"] is False
        assert body["checks"][kind]["error"] == "no heartbeat"


def test_fresh_heartbeats_are_200_with_their_age(client, health_prefix, health_redis):
    write_heartbeat(health_redis, health_prefix, "worker", age_seconds=3)
    write_heartbeat(health_redis, health_prefix, "beat", age_seconds=1)

    status, body = get_health(client)

    assert status == 200
    assert body["status"] == "ok"
    assert all(check["ok"] for check in body["checks"].values())
    assert 3 <= body["checks"]["worker"]["age_seconds"] < 10
    assert 1 <= body["checks"]["beat"]["age_seconds"] < 10


@pytest.mark.parametrize("stale_kind", ["worker", "beat"])
def test_a_stale_heartbeat_is_503(client, settings, health_prefix, health_redis, stale_kind):
    settings.HEARTBEAT_STALE_AFTER_SECONDS = 60
    for kind in ("worker", "beat"):
        write_heartbeat(health_redis, health_prefix, kind, age_seconds=5)
    write_heartbeat(health_redis, health_prefix, stale_kind, age_seconds=61)

    status, body = get_health(client)

    assert status == 503
    stale = body["checks"][stale_kind]
    assert stale["ok"] is False
    assert stale["error"] == "stale"
    assert stale["age_seconds"] >= 61
    assert stale["stale_after_seconds"] == 60
    healthy_kind = "beat" if stale_kind == "worker" else "worker"
    assert body["checks"][healthy_kind]["ok"] is True


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_redis_is_503_fast_and_names_no_url(client, settings, health_prefix):
    port = closed_port()
    settings.REDIS_URL = f"redis://:hunter2-secret@127.0.0.1:{port}/0"

    started = time.monotonic()
    response = client.get("/healthz")
    elapsed = time.monotonic() - started

    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["redis"] == {"ok": False, "error": "ConnectionError"}
    assert body["checks"]["worker"] == {"ok": False, "error": "redis unavailable"}
    assert body["checks"]["beat"] == {"ok": False, "error": "redis unavailable"}
    assert body["checks"]["database"] == {"ok": True}
    # redis-py's default client retries with backoff for seconds; /healthz must not.
    assert elapsed < 2.5
    assert b"hunter2" not in response.content
    assert str(port).encode() not in response.content


def test_a_redis_that_never_answers_times_out_within_the_budget(client, settings, health_prefix):
    # A listening socket nobody reads: TCP connects, PING never gets a reply.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        settings.REDIS_URL = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"

        started = time.monotonic()
        response = client.get("/healthz")
        elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert response.json()["checks"]["redis"] == {"ok": False, "error": "TimeoutError"}
    assert elapsed < 2.5


def test_healthz_is_public_and_not_cached(client, health_redis):
    response = client.get("/healthz")

    assert response.status_code == 503  # answered, not redirected to a login page
    assert "no-cache" in response["Cache-Control"]
    assert "no-store" in response["Cache-Control"]


def test_healthz_only_answers_get(client, health_redis):
    assert client.post("/healthz").status_code == 405
