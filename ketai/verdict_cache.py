"""A bounded memo of output-policy verdicts.

The output policy is a pure function of (draft, phase, assessment level and
signals). Scripted drafts repeat across turns and sessions, so remembering
verdicts saves an embedding per draft on the hot path without changing any
decision.
"""

from __future__ import annotations

from collections import OrderedDict
from threading import Lock

from ketai.guardrails.base import Guardrails
from ketai.models import Assessment, OutputVerdict, Phase

_Key = tuple[str, str | None, str, tuple[str, ...]]


class VerdictCache:
    def __init__(self, guardrails: Guardrails, max_entries: int = 4096) -> None:
        self._guardrails = guardrails
        self._max = max_entries
        self._entries: OrderedDict[_Key, OutputVerdict] = OrderedDict()
        self._lock = Lock()

    def screen_output(
        self, draft: str, *, phase: Phase | None, assessment: Assessment | None
    ) -> OutputVerdict:
        key: _Key = (
            draft,
            phase.value if phase else None,
            assessment.level.value if assessment else "-",
            tuple(sorted(s.name.value for s in assessment.signals)) if assessment else (),
        )
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
                return cached
        verdict = self._guardrails.screen_output(draft, phase=phase, assessment=assessment)
        with self._lock:
            self._entries[key] = verdict
            if len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return verdict
