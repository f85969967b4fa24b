"""Persistent conversation threads, so a `thread_id` survives a restart and a model switch."""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cadre_core import db
from cadre_core.errors import CadreError, clip
from cadre_core.models.base import Message, ToolCall

SCHEMA = """
CREATE TABLE IF NOT EXISTS threads (
    id TEXT PRIMARY KEY, role TEXT NOT NULL, tool TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL, updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS thread_messages (
    thread_id TEXT NOT NULL REFERENCES threads(id), seq INTEGER NOT NULL,
    model TEXT, ts TEXT NOT NULL, message TEXT NOT NULL,
    PRIMARY KEY (thread_id, seq)
);
"""


class UnknownThreadError(CadreError):
    """No thread has this id."""


class ThreadStoreError(CadreError):
    """The thread store cannot be read or written right now."""

    retryable = True


_guarded = db.guarded(ThreadStoreError, "thread store", "[paths] threads")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ThreadStore:
    """Threads and their messages in SQLite; safe across threads and processes."""

    def __init__(self, path: Path | str):
        self.path = path
        self._conn = db.connect(path, schema=SCHEMA)
        self._lock = threading.Lock()

    @_guarded
    def create(self, role: str, tool: str = "") -> str:
        """Start a thread and return its id."""
        thread_id = "t_" + secrets.token_hex(8)
        now = _now()
        with self._lock:
            self._conn.execute(
                "INSERT INTO threads (id, role, tool, created, updated) VALUES (?, ?, ?, ?, ?)",
                (thread_id, role, tool, now, now),
            )
        return thread_id

    @_guarded
    def exists(self, thread_id: str) -> bool:
        with self._lock:
            return self._conn.execute("SELECT 1 FROM threads WHERE id = ?", (thread_id,)).fetchone() is not None

    @_guarded
    def append(self, thread_id: str, messages: list[Message], model: str | None = None) -> None:
        """Add messages to the end of a thread, atomically."""
        now = _now()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._conn.execute(
                    "SELECT COALESCE(MAX(seq), 0) FROM thread_messages WHERE thread_id = ?",
                    (thread_id,),
                ).fetchone()
                seq = row[0]
                for m in messages:
                    seq += 1
                    self._conn.execute(
                        "INSERT INTO thread_messages (thread_id, seq, model, ts, message) VALUES (?, ?, ?, ?, ?)",
                        (thread_id, seq, model, now, json.dumps(asdict(m))),
                    )
                self._conn.execute("UPDATE threads SET updated = ? WHERE id = ?", (now, thread_id))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    @_guarded
    def messages(self, thread_id: str) -> list[Message]:
        """The thread's messages in order; raises `UnknownThreadError` with the fix."""
        if not self.exists(thread_id):
            raise UnknownThreadError(
                f"unknown thread_id '{clip(thread_id)}'. Omit thread_id to start a new thread, "
                "or pass one returned by an earlier call."
            )
        with self._lock:
            rows = self._conn.execute(
                "SELECT message FROM thread_messages WHERE thread_id = ? ORDER BY seq", (thread_id,)
            ).fetchall()
        return [_message(json.loads(r[0])) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _message(data: dict[str, Any]) -> Message:
    data["tool_calls"] = [ToolCall(**c) for c in data.get("tool_calls", [])]
    return Message(**data)


def default_threads_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("cadre")) / "threads.sqlite"
