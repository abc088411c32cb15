"""A real HTTP server on loopback playing a practice's webhook endpoint.

It records every request (headers and raw body) and answers according to ``mode``: ``ok``
(200), ``fail`` (500), ``gone`` (410), ``slow`` (200 after ``slow_seconds``) or ``hang`` (no
answer until the test ends, far past any client timeout). ``script`` gives per-request answers
by webhook-id before falling back to ``mode``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str = ""
    mode: str = "ok"
    slow_seconds: float = 0.2
    # webhook-id -> list of modes to use for its successive requests
    script: dict[str, list[str]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ids(self) -> list[str]:
        with self.lock:
            return [r.webhook_id for r in self.received]

    def mode_for(self, webhook_id: str) -> str:
        with self.lock:
            planned = self.script.get(webhook_id)
            if planned:
                return planned.pop(0)
            return self.mode

    def signature_matches(self, secret: str, item: Received) -> bool:
        """Check with the reference library's signer (no clock check: tests move our clock)."""
        from datetime import UTC, datetime

        stamp = datetime.fromtimestamp(int(item.headers["webhook-timestamp"]), UTC)
        expected = Webhook(secret).sign(item.webhook_id, stamp, item.body.decode())
        given = item.headers["webhook-signature"].split(" ")
        return any(hmac.compare_digest(expected, sig) for sig in given)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            item = Received(headers, body)
            with receiver.lock:
                receiver.received.append(item)
            mode = receiver.mode_for(headers.get("webhook-id", ""))
            if mode == "hang":
                receiver.release.wait(30)
                return
            if mode == "slow":
                receiver.release.wait(receiver.slow_seconds)
            status = {"ok": 200, "slow": 200, "fail": 500, "gone": 410}[mode]
            answer = b'{"ok": true}' if status == 200 else b"boom " * 1000
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def receiving(mode: str = "ok") -> Iterator[Receiver]:
    receiver = Receiver(mode=mode)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def digest(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """An independent signature for cross-checks: base64 HMAC-SHA256 of 'id.ts.body'."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()
