"""Container health checks for docker-compose.yml: `python scripts/healthcheck.py web|worker|beat`.

web:    /healthz answers over HTTP and its database check passes (web is up and migrated;
        worker and beat have their own checks, so they can wait for web without a deadlock).
worker, beat: the process's heartbeat in Redis is fresh (the same rule as /healthz).
Exit 0 when healthy, 1 when not, 2 on bad usage.
"""

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
KINDS = ("web", "worker", "beat")


def web_is_healthy(port: str) -> bool:
    from django.conf import settings

    host = next((h.lstrip(".") for h in settings.ALLOWED_HOSTS if h != "*"), "localhost")
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/healthz",
        # Behind the TLS proxy production expects; without it SSL redirect answers 301.
        headers={"Host": host, "X-Forwarded-Proto": "https"},
    )
    try:
        # A fixed http URL on the loopback, never user input.
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            body = response.read()
    except urllib.error.HTTPError as error:
        body = error.read()  # 503 still means web answered; look at the database check
    except OSError as error:
        reason = getattr(error, "reason", error)  # URLError wraps the socket error
        print(f"web: no answer ({type(reason).__name__})")
        return False
    return bool(json.loads(body)["checks"]["database"]["ok"])


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in KINDS:
        print(f"usage: python scripts/healthcheck.py {'|'.join(KINDS)}", file=sys.stderr)
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
    import django

    django.setup()
    kind = argv[0]
    if kind == "web":
        return 0 if web_is_healthy(os.environ.get("TRADELOOP_PORT", "8000")) else 1
    from apps.common.health import platform_health

    check = platform_health()["checks"][kind]
    print(f"{kind}: {check}")
    return 0 if check["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
