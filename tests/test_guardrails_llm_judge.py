"""The optional LLM judge against a real OpenAI-compatible HTTP server on 127.0.0.1 (stdlib http.server).

The judge can only raise the level; a failing or slow endpoint is logged and ignored."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ketai.guardrails import KetaiGuardrails, build_guardrails
from ketai.guardrails.llm_judge import LLMJudge, parse_answer
from ketai.models import EscalationLevel, Phase, Role, SignalName
from ketai.settings import Settings


class ChatServer:
    """Answers /v1/chat/completions with ``reply`` (JSON text) or an HTTP ``status``, after ``delay_s``."""

    def __init__(self) -> None:
        self.reply = '{"signals": []}'
        self.status = 200
        self.delay_s = 0.0
        self.bodies: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                server.bodies.append(json.loads(self.rfile.read(length) or b"{}"))
                time.sleep(server.delay_s)
                if self.path != "/v1/chat/completions" or server.status != 200:
                    self.send_response(server.status if server.status != 200 else 404)
                    self.end_headers()
                    return
                payload = {
                    "id": "chatcmpl-test",
                    "object": "chat.completion",
                    "created": 0,
                    "model": "judge",
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": server.reply},
                        }
                    ],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"


@pytest.fixture
def server() -> Iterator[ChatServer]:
    chat = ChatServer()
    chat.thread.start()
    yield chat
    chat.httpd.shutdown()
    chat.httpd.server_close()


def judged(server: ChatServer, timeout: float = 5.0) -> KetaiGuardrails:
    settings = Settings(
        llm_judge=True, llm_base_url=server.base_url, llm_model="judge", llm_timeout_s=timeout
    )
    guardrails = build_guardrails(settings, use_classifier=False)
    assert isinstance(guardrails.judge, LLMJudge)
    return guardrails


def test_judge_can_raise_the_level(server: ChatServer) -> None:
    server.reply = '{"signals": [{"name": "suicide_risk", "confidence": 0.9}]}'
    text = "Lately I have been tidying up all my loose ends, it feels calm"
    a = judged(server).screen_input(text, phase=None, role=Role.PATIENT)
    assert a.has(SignalName.SUICIDE_RISK) and a.level == EscalationLevel.CLINICIAN
    assert any(s.detector == "llm_judge" for s in a.signals)
    sent = server.bodies[-1]
    assert sent["model"] == "judge" and text in json.dumps(sent)


def test_judge_cannot_lower_the_level(server: ChatServer) -> None:
    server.reply = '{"signals": []}'
    a = judged(server).screen_input("I can't breathe", phase=Phase.PEAK, role=Role.PATIENT)
    assert a.level == EscalationLevel.EMERGENCY


def test_judge_garbage_and_unknown_names_are_ignored(server: ChatServer) -> None:
    server.reply = 'sure! {"signals": [{"name": "be_very_worried", "confidence": 1.0}]}'
    a = judged(server).screen_input("the music is nice", phase=Phase.PEAK, role=Role.PATIENT)
    assert a.level == EscalationLevel.NONE


@pytest.mark.parametrize(("status", "delay"), [(500, 0.0), (200, 2.0)])
def test_failing_or_slow_judge_is_ignored(server: ChatServer, status: int, delay: float) -> None:
    server.status, server.delay_s = status, delay
    server.reply = '{"signals": [{"name": "suicide_risk", "confidence": 0.9}]}'
    a = judged(server, timeout=0.5).screen_input("I want to die", phase=None, role=Role.PATIENT)
    assert a.has(SignalName.SUICIDE_RISK) and a.level >= EscalationLevel.CLINICIAN  # rules still work
    assert any("llm judge unavailable" in note for note in a.notes)


def test_parse_answer_is_strict() -> None:
    assert parse_answer('{"signals": [{"name": "self_harm", "confidence": 0.7}]}') == [
        (SignalName.SELF_HARM, 0.7)
    ]
    assert parse_answer("no json here") == []
    assert parse_answer('{"signals": [{"name": "self_harm", "confidence": 7}]}') == []
