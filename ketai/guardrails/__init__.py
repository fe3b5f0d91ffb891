"""KetAI's guardrail layer: input screening, session risk memory, the escalation ladder and output policy.

``build_guardrails(settings)`` loads every file under ``guardrails/`` once (validated; a bad file raises one
``ContentError`` naming the file and field), the trained classifier artifact if present, and the optional
LLM judge when ``settings.llm_judge`` and ``settings.llm_base_url`` are set.
"""

from __future__ import annotations

import logging

from ketai.content.paths import content_dir
from ketai.guardrails.base import EscalationActions, Guardrails, RiskEvent, SafetyMemory
from ketai.guardrails.classifier import ARTIFACT_NAME, SignalClassifier
from ketai.guardrails.ladder import AckTimeoutActions
from ketai.guardrails.loader import GuardrailContent, load_content
from ketai.guardrails.output_classifier import OUTPUT_ARTIFACT_NAME, OutputClassifier
from ketai.guardrails.output_policy import ScriptedText
from ketai.guardrails.screening import KetaiGuardrails
from ketai.settings import Settings

__all__ = [
    "AckTimeoutActions",
    "EscalationActions",
    "GuardrailContent",
    "Guardrails",
    "KetaiGuardrails",
    "RiskEvent",
    "SafetyMemory",
    "build_guardrails",
    "load_content",
]

log = logging.getLogger(__name__)


def build_guardrails(settings: Settings | None = None, *, use_classifier: bool = True) -> KetaiGuardrails:
    """The guardrails the engine uses. Offline unless the LLM judge is switched on in settings."""
    settings = settings or Settings()
    content = load_content()
    classifier: SignalClassifier | None = None
    output_classifier: OutputClassifier | None = None
    folder = content_dir("guardrails") / "classifier"
    if use_classifier:
        from ketai.embeddings import shared_embedder

        if (folder / ARTIFACT_NAME).exists():
            classifier = SignalClassifier.load(folder / ARTIFACT_NAME, shared_embedder())
        else:
            log.warning("classifier artifact %s missing: screening with rules only", folder / ARTIFACT_NAME)
        if (folder / OUTPUT_ARTIFACT_NAME).exists():
            output_classifier = OutputClassifier.load(folder / OUTPUT_ARTIFACT_NAME, shared_embedder())
    judge = None
    if settings.llm_judge and settings.llm_base_url:
        from ketai.guardrails.llm_judge import LLMJudge

        judge = LLMJudge.from_settings(settings, content)
    from ketai.content.prompts import load_prompt_book

    return KetaiGuardrails(
        content,
        classifier=classifier,
        judge=judge,
        ack_timeout_s=settings.companion_ack_timeout_s,
        output_classifier=output_classifier,
        scripted=ScriptedText(load_prompt_book().templates()),
    )
