"""Builds a ``SessionEngine`` from settings: the composition root for interfaces."""

from __future__ import annotations

from ketai.clock import Clock
from ketai.engine import SessionEngine
from ketai.guardrails import build_guardrails
from ketai.responders.base import Responder
from ketai.responders.scripted import ScriptedResponder
from ketai.settings import Settings
from ketai.store.sqlite import SQLiteTranscriptStore


def build_responder(settings: Settings, scripted: ScriptedResponder) -> Responder:
    if settings.responder == "llm":
        from ketai.responders.llm import LLMResponder

        return LLMResponder(settings=settings, fallback=scripted)
    return scripted


def build_engine(settings: Settings | None = None, clock: Clock | None = None) -> SessionEngine:
    settings = settings or Settings()
    settings.home_dir.mkdir(parents=True, exist_ok=True)
    store = SQLiteTranscriptStore(settings.db_path)
    guardrails = build_guardrails(settings)
    scripted = ScriptedResponder()
    from ketai.wiring import build_notice_sender, build_offerer, locale_variables

    return SessionEngine(
        screen_spec=guardrails.content.suicide_screen,
        content_versions={
            "ladder": guardrails.content.ladder.version,
            "suicide_screen": guardrails.content.suicide_screen.version,
            "output_policy": guardrails.content.output_policy.version,
        },
        store=store,
        guardrails=guardrails,
        responder=build_responder(settings, scripted),
        clock=clock,
        notice_sender=build_notice_sender(settings),
        offerer=build_offerer(settings),
        companion_ack_timeout_s=settings.companion_ack_timeout_s,
        locale_variables=locale_variables(guardrails),
    )
