"""The TradingView receiver's own ASGI entry, in front of Django (config/asgi.py).

Under ASGI, Django runs each middleware's request and response hooks as a thread hop of
their own: 13 hops per webhook with our middleware (measured), most of the web process's
CPU for a delivery and, under load, a wait for a CPU at every hop (issue 7's latency
target). The receiver needs none of them: no session, no CSRF (it is csrf_exempt), no
static files, JSON out. So a POST under /hooks/tv/ becomes Django's own ASGI request and
runs in ONE hop through the same URL and view; any other request goes to Django.

Kept from Django's path: the request and finished signals (connections closed or given
back to the pool), the host check (ALLOWED_HOSTS), SecurityMiddleware (the HTTPS redirect
and its headers), and Django's answer to an exception (logged, no details out).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import DisallowedHost, RequestAborted
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.db import connections
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.middleware.security import SecurityMiddleware
from django.urls import resolve
from django.utils import timezone

HOOK_PREFIX = "/hooks/tv/"
# The scope key holding when the request arrived (the view reads it, apps/signals/views.py).
RECEIVED_AT = "tradeloop.received_at"
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _view_response(request: HttpRequest) -> HttpResponse:
    match = resolve(request.path_info)
    response: HttpResponse = match.func(request, *match.args, **match.kwargs)
    return response


_security = SecurityMiddleware(_view_response)


@convert_exception_to_response
def _respond(request: HttpRequest) -> HttpResponse:
    try:
        request.get_host()
    except DisallowedHost:
        return HttpResponseBadRequest()
    response: HttpResponse = _security(request)
    return response


class HookFirst:
    """Webhook deliveries straight to the receiver; everything else to `app`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.django = ASGIHandler()
        # Bounds the deliveries in flight, and so the connections they hold.
        self.executor = ThreadPoolExecutor(
            max_workers=settings.SIGNALS_HOOK_CONCURRENCY, thread_name_prefix="hook"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"].startswith(HOOK_PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        # The delivery's "received" stage starts here, before it waits for a thread.
        scope = {**scope, RECEIVED_AT: timezone.now()}
        try:
            body = await self.django.read_body(receive)
        except RequestAborted:
            return
        try:
            request, error = self.django.create_request(scope, body)
            if request is None:
                response = error
            else:
                run = sync_to_async(_handle, thread_sensitive=False, executor=self.executor)
                response = await run(request)
            await self.django.send_response(response, send)
        finally:
            body.close()


def _handle(request: HttpRequest) -> HttpResponse:
    signals.request_started.send(sender=HookFirst)
    try:
        response = _respond(request)
        response.close()  # sends request_finished, as Django does after sending
        return response
    finally:
        # A pooled connection goes back to the pool; an unpooled one (tests) never
        # outlives its delivery on an executor thread.
        connections.close_all()
