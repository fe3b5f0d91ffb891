"""Adapters from settings to the optional collaborators: notifiers, exercise offers, locale text."""

from __future__ import annotations

from ketai.exercise_offers import RetrievalOfferer
from ketai.guardrails import KetaiGuardrails
from ketai.notify import build_notifiers
from ketai.notifying import NoticeSender
from ketai.offers import ExerciseOfferer
from ketai.settings import Settings


def build_notice_sender(settings: Settings) -> NoticeSender:
    return NoticeSender(build_notifiers(settings))


def build_offerer(settings: Settings) -> ExerciseOfferer:
    return RetrievalOfferer(settings)


def locale_variables(guardrails: KetaiGuardrails) -> dict[str, dict[str, str]]:
    """Prompt variables per locale ({emergency_number}, {crisis_line}, ...) from the guardrail crisis data."""
    return {locale: guardrails.ladder.locale_values(locale) for locale in guardrails.content.crisis.locales}
