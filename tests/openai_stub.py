"""A tiny OpenAI-compatible chat server on 127.0.0.1 for tests (a real HTTP server, not a mock).

``POST /v1/chat/completions`` answers from a queue of canned replies that the test
fills: a text, an HTTP error status, or a stall longer than the client's timeout.
Every request is recorded (path, headers, JSON body) so a test can check what
was sent. With an empty queue the server answers 500, so an unexpected call is
visible as a fallback rather than a silent success.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHAT_PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class CannedReply:
    content: str = ""
    status: int = 200
    delay_s: float = 0.0


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))

    def content_of(self, role: str) -> str:
        return "\n".join(
            str(m.get("content", "")) for m in self.body.get("messages", []) if m.get("role") == role
        )

    @property
    def system_prompt(self) -> str:
        return self.content_of("system")

    @property
    def user_message(self) -> str:
        return self.content_of("user")


class OpenAIStub:
    """Start with ``with OpenAIStub() as stub:``; point clients at ``stub.base_url``."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._queue: deque[CannedReply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- what the test controls ------------------------------------------------------------------
    def reply(self, content: str) -> None:
        self._push(CannedReply(content=content))

    def fail(self, status: int = 500) -> None:
        self._push(CannedReply(status=status))

    def stall(self, seconds: float, content: str = "This reply arrives too late.") -> None:
        self._push(CannedReply(content=content, delay_s=seconds))

    def _push(self, canned: CannedReply) -> None:
        with self._lock:
            self._queue.append(canned)

    def _next(self) -> CannedReply | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "stub not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def start(self) -> OpenAIStub:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="openai-stub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes any stalled handler at once
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serving -----------------------------------------------------------------------------------
    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = {"_unparsed": raw.decode("utf-8", "replace")}
        with self._lock:
            self.requests.append(
                RecordedRequest(handler.path, {k.lower(): v for k, v in handler.headers.items()}, body)
            )
        if handler.path != CHAT_PATH:
            _send(handler, 404, {"error": {"message": f"no route {handler.path}", "type": "not_found"}})
            return
        canned = self._next()
        if canned is None:
            _send(handler, 500, {"error": {"message": "the stub has no canned reply queued", "type": "stub"}})
            return
        if canned.delay_s and self._stopping.wait(canned.delay_s):
            handler.close_connection = True
            return
        if canned.status != 200:
            _send(handler, canned.status, {"error": {"message": "stub failure", "type": "server_error"}})
            return
        _send(handler, 200, _completion(str(body.get("model", "stub-model")), canned.content))


def _completion(model: str, content: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-stub-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": max(1, len(content) // 4), "total_tokens": 2},
    }


def _send(handler: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
    data = json.dumps(payload).encode("utf-8")
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up (timeout test); nothing to tell it


def _handler_for(stub: OpenAIStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as separate writes; avoid a 40 ms stall

        def do_POST(self) -> None:
            stub.handle(self)

        def do_GET(self) -> None:
            stub.handle(self)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler
