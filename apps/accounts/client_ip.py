"""The client IP that brute-force counting and the audit trail see (SEC-4).

django-ipware is not installed, so axes would ignore AXES_IPWARE_PROXY_COUNT and always use
REMOTE_ADDR. This resolver honours that setting itself: with no trusted proxy, the socket
peer is the client and X-Forwarded-For is ignored, because any client can send it.
"""

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def client_ip_address(request: HttpRequest, proxy_count: int | None = None) -> str | None:
    """`proxy_count` trusted proxies (default: AXES_IPWARE_PROXY_COUNT) in front."""
    remote_addr = request.META.get("REMOTE_ADDR")
    if proxy_count is None:
        proxy_count = settings.AXES_IPWARE_PROXY_COUNT or 0
    if proxy_count <= 0:
        return remote_addr
    forwarded_for = request.META.get("HTTP_X_FORWARDED_FOR", "")
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    # Each trusted proxy appends the address it received the request from, so the client is
    # the entry the outermost trusted proxy wrote: proxy_count places from the right.
    # Entries further left were written by the client and prove nothing.
    if len(hops) < proxy_count or not _is_ip(hops[-proxy_count]):
        return remote_addr
    return hops[-proxy_count]
