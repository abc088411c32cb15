"""A local OpenAI-compatible chat-completions server on loopback, playing a language model:
each request gets the next scripted reply (a tool call, plain text, an error, a slow answer),
and every request is kept for the test to read. The official ``openai`` SDK talks to it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def tool_call(name: str, arguments: dict[str, Any], *, prompt: int = 50, done: int = 10) -> Any:
    """A reply that calls tool ``name`` with ``arguments`` (and reports token usage)."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_764_000_000,
        "model": "test-model",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": name, "arguments": json.dumps(arguments)},
                        }
                    ],
                },
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": done,
            "total_tokens": prompt + done,
        },
    }


def text_reply(content: str) -> Any:
    """A reply with no tool call at all (a model that ignored the tools)."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_764_000_000,
        "model": "test-model",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": content},
            }
        ],
        "usage": {"prompt_tokens": 40, "completion_tokens": 5, "total_tokens": 45},
    }


@dataclass
class Status:
    code: int


@dataclass
class Slow:
    seconds: float
    reply: Any


@dataclass
class FakeModel:
    url: str = ""
    script: list[Any] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    # Called on every request before the reply (a test looks at the world the call sees).
    on_request: Callable[[], None] | None = None


@contextmanager
def fake_model(*script: Any) -> Iterator[FakeModel]:
    state = FakeModel(script=list(script))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests.append({"path": self.path, **json.loads(raw)})
            state.headers.append({k.lower(): v for k, v in self.headers.items()})
            if state.on_request is not None:
                state.on_request()
            step = state.script.pop(0) if state.script else text_reply("")
            if callable(step):  # a reply made from the request (the passages it was given)
                step = step(state.requests[-1])
            if isinstance(step, Slow):
                time.sleep(step.seconds)
                step = step.reply
            if isinstance(step, Status):
                body, code = {"error": {"message": "scripted failure"}}, step.code
            else:
                body, code = step, 200
            data = json.dumps(body).encode()
            try:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout we caused on purpose)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
