"""The offline default responder: every sentence comes from ``prompts/scripted/*.yaml``."""

from __future__ import annotations

from ketai.content.prompts import PromptBook, load_prompt_book
from ketai.dialogue import Say
from ketai.responders.base import Draft, ResponderContext


class ScriptedResponder:
    """Renders clinician-reviewed prompt text; records prompt id and version on each draft."""

    def __init__(self, book: PromptBook | None = None) -> None:
        self._book = book or load_prompt_book()

    @property
    def book(self) -> PromptBook:
        return self._book

    def respond(self, says: list[Say], context: ResponderContext) -> list[Draft]:
        drafts: list[Draft] = []
        for say in says:
            variables = {**context.variables, **say.variables}
            rendered = self._book.render(say.step, say.key, variables, variant=say.variant)
            drafts.append(
                Draft(
                    text=rendered.text,
                    prompt_id=rendered.id,
                    prompt_version=rendered.version,
                    audience=say.audience,
                )
            )
        return drafts
