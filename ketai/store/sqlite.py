"""SQLite transcript store (stdlib ``sqlite3``, WAL journal). The embedded default.

One connection per store object, guarded by a lock; WAL lets ``ketai
sessions`` read while a chat writes. Every write is a single transaction.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from ketai.errors import SessionNotFound
from ketai.store.base import EventRecord, NoticeRecord, SessionRecord, TurnRecord

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL,
    phase TEXT NOT NULL,
    highest_escalation TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    session_id TEXT NOT NULL REFERENCES sessions(id),
    seq INTEGER NOT NULL,
    role TEXT NOT NULL,
    answered INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    created_at TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_session ON events(session_id, id);
CREATE TABLE IF NOT EXISTS notices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    delivered_at TEXT,
    last_error TEXT,
    payload TEXT NOT NULL
);
"""


class SQLiteTranscriptStore:
    """``TranscriptStore`` on a local SQLite file (``$KETAI_HOME/ketai.sqlite3``)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode is durable across process crashes (only an OS crash can lose the last commit).
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.executescript(_SCHEMA)
        self._conn.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
        )

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            else:
                cur.execute("COMMIT")

    # -- sessions ---------------------------------------------------------

    def create_session(self, session: SessionRecord) -> None:
        with self._tx() as cur:
            self._write_session(cur, session, insert=True)

    def _write_session(self, cur: sqlite3.Cursor, session: SessionRecord, *, insert: bool) -> None:
        values = (
            session.patient_id,
            session.phase.value,
            session.highest_escalation.value,
            session.created_at.isoformat(),
            session.updated_at.isoformat(),
            session.model_dump_json(),
            session.id,
        )
        if insert:
            cur.execute(
                "INSERT INTO sessions(patient_id, phase, highest_escalation, created_at, updated_at, record, id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                values,
            )
        else:
            cur.execute(
                "UPDATE sessions SET patient_id=?, phase=?, highest_escalation=?, created_at=?, updated_at=?,"
                " record=? WHERE id=?",
                values,
            )

    def get_session(self, session_id: str) -> SessionRecord:
        with self._lock:
            row = self._conn.execute("SELECT record FROM sessions WHERE id=?", (session_id,)).fetchone()
        if row is None:
            raise SessionNotFound(f"no session with id {session_id!r}")
        return SessionRecord.model_validate_json(row[0])

    def list_sessions(self) -> list[SessionRecord]:
        with self._lock:
            rows = self._conn.execute("SELECT record FROM sessions ORDER BY created_at, id").fetchall()
        return [SessionRecord.model_validate_json(r[0]) for r in rows]

    # -- turns ------------------------------------------------------------

    def append_incoming(self, turn: TurnRecord) -> None:
        with self._tx() as cur:
            self._insert_turn(cur, turn)

    @staticmethod
    def _insert_turn(cur: sqlite3.Cursor, turn: TurnRecord) -> None:
        cur.execute(
            "INSERT INTO turns(session_id, seq, role, answered, created_at, record) VALUES (?, ?, ?, ?, ?, ?)",
            (
                turn.session_id,
                turn.seq,
                turn.role.value,
                int(turn.answered),
                turn.created_at.isoformat(),
                turn.model_dump_json(),
            ),
        )

    def pending_incoming(self, session_id: str) -> TurnRecord | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT record FROM turns WHERE session_id=? AND role NOT IN ('ketai', 'system') AND answered=0"
                " ORDER BY seq DESC LIMIT 1",
                (session_id,),
            ).fetchone()
        return None if row is None else TurnRecord.model_validate_json(row[0])

    def commit_turn(
        self,
        session: SessionRecord,
        answered: TurnRecord | None,
        turns: list[TurnRecord],
        events: list[EventRecord],
        notices: list[NoticeRecord],
    ) -> None:
        with self._tx() as cur:
            if answered is not None:
                updated = answered.model_copy(update={"answered": True})
                cur.execute(
                    "UPDATE turns SET answered=1, record=? WHERE session_id=? AND seq=?",
                    (updated.model_dump_json(), answered.session_id, answered.seq),
                )
            for turn in turns:
                self._insert_turn(cur, turn)
            for event in events:
                cur.execute(
                    "INSERT INTO events(session_id, seq, kind, created_at, record) VALUES (?, ?, ?, ?, ?)",
                    (
                        event.session_id,
                        event.seq,
                        event.kind,
                        event.created_at.isoformat(),
                        event.model_dump_json(),
                    ),
                )
            for notice in notices:
                cur.execute(
                    "INSERT INTO notices(session_id, seq, created_at, payload) VALUES (?, ?, ?, ?)",
                    (
                        notice.session_id,
                        notice.seq,
                        notice.created_at.isoformat(),
                        json.dumps(notice.payload),
                    ),
                )
            self._write_session(cur, session, insert=False)

    def turns(self, session_id: str) -> list[TurnRecord]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT record FROM turns WHERE session_id=? ORDER BY seq", (session_id,)
            ).fetchall()
        return [TurnRecord.model_validate_json(r[0]) for r in rows]

    def events(self, session_id: str) -> list[EventRecord]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT record FROM events WHERE session_id=? ORDER BY id", (session_id,)
            ).fetchall()
        return [EventRecord.model_validate_json(r[0]) for r in rows]

    # -- notices outbox ---------------------------------------------------

    def undelivered_notices(self, session_id: str | None = None) -> list[NoticeRecord]:
        query = (
            "SELECT id, session_id, seq, created_at, delivered_at, last_error, payload FROM notices"
            " WHERE delivered_at IS NULL"
        )
        params: tuple[str, ...] = ()
        if session_id is not None:
            query += " AND session_id=?"
            params = (session_id,)
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY id", params).fetchall()
        return [
            NoticeRecord(
                id=r[0],
                session_id=r[1],
                seq=r[2],
                created_at=datetime.fromisoformat(r[3]),
                delivered_at=None,
                last_error=r[5],
                payload=json.loads(r[6]),
            )
            for r in rows
        ]

    def mark_notice(self, notice_id: int, *, delivered_at: datetime | None, error: str | None) -> None:
        with self._tx() as cur:
            cur.execute(
                "UPDATE notices SET delivered_at=?, last_error=? WHERE id=?",
                (delivered_at.isoformat() if delivered_at else None, error, notice_id),
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()
