"""The fake's HTTP server: one ThreadingHTTPServer on 127.0.0.1 for both venues."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.exchange import binance, bybit
from tests.fakes.exchange.core import DROP_REPLY, FakeExchange, RecordedRequest, Reply

ROUTES = {**binance.ROUTES, **bybit.ROUTES}


def _answer(fake: FakeExchange, request: RecordedRequest) -> Reply:
    handler = ROUTES.get((request.method, request.path))
    if handler is None:
        return 404, {"code": -1, "msg": f"fake exchange has no {request.method} {request.path}"}
    return handler(fake, request)


class _Handler(BaseHTTPRequestHandler):
    server: _FakeServer

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = RecordedRequest(
            method=self.command,
            path=url.path,
            query=parse_qs(url.query),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self.rfile.read(length).decode() if length else "",
        )
        fake = self.server.fake
        fake.record(request)
        reply = _answer(fake, request)
        if reply is DROP_REPLY:
            # Accepted, then silence: the client sees a timeout or a closed connection.
            time.sleep(fake.drop_delay_s)
            self.close_connection = True
            return
        status, body = reply[0], reply[1]
        headers: dict[str, str] = reply[2] if len(reply) > 2 else {}  # type: ignore[misc]
        # A str body is sent as it is (an HTML error page); anything else as JSON.
        text = isinstance(body, str)
        payload = body.encode() if text else json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/html" if text else "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        # Quiet: the default writes every request line to stderr.
        pass


class _FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeExchange) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


@contextmanager
def run_fake_exchange() -> Iterator[FakeExchange]:
    """Serve a fresh FakeExchange on 127.0.0.1 (a free port) for the duration of the block."""
    fake = FakeExchange()
    server = _FakeServer(fake)
    host, port = server.server_address[:2]
    fake.base_url = f"http://{host}:{port}"
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="fake-exchange", daemon=True
    )
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
