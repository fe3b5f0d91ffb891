"""Clinician notices: the webhook against a real HTTP server on 127.0.0.1, the file notifier, and failures
that never break a turn."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ketai.errors import BackendUnavailable
from ketai.models import EscalationLevel, Phase, SignalName
from ketai.notify import (
    EXCERPT_CHARS,
    ClinicianNotice,
    FileNotifier,
    WebhookNotifier,
    build_notifiers,
    deliver_all,
    raise_for_failure,
)
from ketai.settings import Settings


class Receiver:
    def __init__(self, status: int = 204) -> None:
        self.status = status
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                receiver.received.append(
                    {
                        "path": self.path,
                        "type": self.headers.get("Content-Type"),
                        "body": json.loads(self.rfile.read(length)),
                    }
                )
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/notices"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.httpd.shutdown()
    r.httpd.server_close()


def notice() -> ClinicianNotice:
    return ClinicianNotice.build(
        session_id="s-1",
        turn_seq=4,
        level=EscalationLevel.EMERGENCY,
        signals=[SignalName.SUICIDE_RISK],
        text="I want to die " * 50,
        phase=Phase.PEAK,
    )


def test_webhook_posts_json(receiver: Receiver) -> None:
    result = WebhookNotifier(receiver.url, timeout=2).send(notice())
    assert result.delivered
    (got,) = receiver.received
    assert got["path"] == "/notices" and got["type"] == "application/json"
    body = got["body"]
    assert (
        body["session_id"] == "s-1" and body["level"] == "emergency" and body["signals"] == ["suicide_risk"]
    )
    assert len(body["excerpt"]) <= EXCERPT_CHARS and body["phase"] == "peak" and body["created_at"]


def test_webhook_http_error_is_a_failed_delivery_not_an_exception(receiver: Receiver) -> None:
    receiver.status = 500
    result = WebhookNotifier(receiver.url, timeout=2).send(notice())
    assert not result.delivered and "500" in result.detail


def test_unreachable_webhook_never_raises(tmp_path: Path) -> None:
    dead = WebhookNotifier("http://127.0.0.1:9/nothing-listens-here", timeout=0.5)
    results = deliver_all([dead, FileNotifier(tmp_path / "notices.jsonl")], notice())
    assert [r.delivered for r in results] == [False, True]
    raise_for_failure(results)  # one delivered: fine
    with pytest.raises(BackendUnavailable):
        raise_for_failure(deliver_all([dead], notice()))


def test_file_notifier_appends_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "notices.jsonl"
    notifier = FileNotifier(path)
    assert notifier.send(notice()).delivered and notifier.send(notice()).delivered
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["turn_seq"] == 4


def test_build_notifiers_from_settings(tmp_path: Path, receiver: Receiver) -> None:
    only_file = build_notifiers(Settings(home=tmp_path))
    assert [n.name for n in only_file] == ["file"]
    both = build_notifiers(Settings(home=tmp_path, webhook_url=receiver.url))
    assert [n.name for n in both] == ["file", "webhook"]
    assert all(r.delivered for r in deliver_all(both, notice()))
    assert (tmp_path / "notices.jsonl").exists()
