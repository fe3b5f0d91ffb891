"""Adapters from settings to the optional collaborators: notifiers, exercise offers, locale text."""

from __future__ import annotations

from ketai.notifying import NoticeSender
from ketai.offers import ExerciseOfferer
from ketai.settings import Settings


def build_notice_sender(settings: Settings) -> NoticeSender:
    from ketai.notify import build_notifiers

    notifiers = build_notifiers(settings)
    return NoticeSender([n.notify_payload for n in notifiers])


def build_offerer(settings: Settings) -> ExerciseOfferer | None:
    from ketai.exercise_offers import RetrievalOfferer

    return RetrievalOfferer(settings)


def locale_variables() -> dict[str, dict[str, str]]:
    from ketai.guardrails import locale_prompt_variables

    return locale_prompt_variables()
