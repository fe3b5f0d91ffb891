"""Incoming text hygiene: nothing is rejected silently, nothing crashes a turn.

The full text is stored (durable record for the clinician); control
characters other than newline and tab are removed, and very long messages
are screened and answered on a bounded window (the note says so).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

MAX_STORED_CHARS = 200_000
"""Larger messages are truncated for storage (the note records the original length)."""
SCREEN_WINDOW_CHARS = 4_000


@dataclass
class CleanText:
    stored: str
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.stored.strip()

    @property
    def for_screening(self) -> str:
        return self.stored[:SCREEN_WINDOW_CHARS]


def clean_incoming(text: str) -> CleanText:
    notes: list[str] = []
    if "\ufffd" in text:
        notes.append("unreadable_bytes_replaced")
    kept = []
    removed = 0
    for ch in text:
        if ch in "\n\t" or unicodedata.category(ch)[0] != "C" or ch == "\u200d":
            kept.append(ch)
        else:
            removed += 1
    cleaned = "".join(kept)
    if removed:
        notes.append(f"control_characters_removed:{removed}")
    if len(cleaned) > MAX_STORED_CHARS:
        notes.append(f"truncated_from:{len(cleaned)}")
        cleaned = cleaned[:MAX_STORED_CHARS]
    if len(cleaned) > SCREEN_WINDOW_CHARS:
        notes.append("long_message")
    return CleanText(stored=cleaned.strip(), notes=notes)
