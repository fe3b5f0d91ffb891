"""Transcript storage: the ``TranscriptStore`` protocol and its SQLite default."""

from ketai.store.base import EventRecord, NoticeRecord, SessionRecord, TranscriptStore, TurnRecord
from ketai.store.sqlite import SQLiteTranscriptStore

__all__ = [
    "EventRecord",
    "NoticeRecord",
    "SQLiteTranscriptStore",
    "SessionRecord",
    "TranscriptStore",
    "TurnRecord",
]
