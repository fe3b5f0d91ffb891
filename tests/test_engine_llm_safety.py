"""An LLM draft that strays into dose advice never reaches the patient, and the care team hears of it.

The LLM is a real HTTP server on 127.0.0.1 speaking the OpenAI chat-completions protocol (tests/openai_stub.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ketai.app import build_engine
from ketai.clock import ManualClock
from ketai.content.protocols import load_protocol
from ketai.models import Phase, Role
from ketai.settings import Settings
from tests.openai_stub import OpenAIStub

PRE_SESSION = [
    "yes she is here",
    "yes",
    "126/80",
    "no",
    "yes",
    "yes",
    "yes",
    "let the doubt be there",
    "40",
    "5",
]


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as server:
        yield server


def test_llm_dose_advice_is_replaced_and_the_clinician_is_told(stub: OpenAIStub, tmp_path: Path) -> None:
    clock = ManualClock()
    engine = build_engine(
        Settings(home=tmp_path, responder="llm", llm_base_url=stub.base_url, llm_timeout_s=5.0), clock=clock
    )
    sid = engine.start(load_protocol()).session_id
    for answer in [*PRE_SESSION, "placed"]:
        engine.turn(sid, Role.PATIENT, answer)  # the stub answers 500: scripted text is used
    clock.advance(minutes=16)
    engine.tick(sid)
    assert engine.turn(sid, Role.PATIENT, "done, spat it out").phase is Phase.PEAK

    stub.reply("If it feels weak, you can take another troche now; that's usually fine.")
    reply = engine.turn(sid, Role.PATIENT, "everything is soft and far away")

    assert "another troche" not in reply.text
    assert any(m.kind == "fallback" for m in reply.messages)
    events = engine.store.events(sid)
    replaced = [e.data for e in events if e.kind == "output_replaced"]
    assert replaced and "dose_advice" in replaced[-1]["rules"]
    assert any(e.kind == "clinician_notice" and "reply replaced" in e.data["reason"] for e in events)
    engine.store.close()
