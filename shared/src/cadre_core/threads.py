"""Persistent conversation threads, so a `thread_id` survives a restart and a model switch."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cadre_core.errors import CadreError, clip
from cadre_core.identity import current_user
from cadre_core.models.base import Message, ToolCall
from cadre_core.storage import StorageError, guarded, open_database
from cadre_core.storage.migrations import Migrations

MIGRATIONS = Migrations(
    "threads",
    (
        """
        CREATE TABLE IF NOT EXISTS threads (
            id TEXT PRIMARY KEY, role TEXT NOT NULL, tool TEXT NOT NULL DEFAULT '',
            created TEXT NOT NULL, updated TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS thread_messages (
            thread_id TEXT NOT NULL REFERENCES threads(id), seq INTEGER NOT NULL,
            model TEXT, ts TEXT NOT NULL, message TEXT NOT NULL,
            PRIMARY KEY (thread_id, seq)
        )
        """,
        "ALTER TABLE threads ADD COLUMN user_name TEXT",
    ),
    table="threads",
)


class UnknownThreadError(CadreError):
    """No thread has this id."""


class ThreadStoreError(CadreError):
    """The thread store cannot be read or written right now."""

    retryable = True


_guarded = guarded(ThreadStoreError, ", or set [paths] threads in cadre.toml to a writable file")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _mine() -> tuple[str, list[Any]]:
    """The SQL condition (and its argument) limiting threads to the current user's; none without a user."""
    user = current_user()
    return ("AND user_name = ?", [user]) if user is not None else ("", [])


class ThreadStore:
    """Threads and their messages in a `cadre_core.storage` database; safe across threads, processes and
    replicas. With a user set (`cadre_core.identity`) only that user's threads exist; without, all do."""

    def __init__(self, path: Path | str):
        """Open the store at `path`, a file or a `postgresql://` URL."""
        try:
            self.db = open_database(path, MIGRATIONS)
        except StorageError as exc:
            raise ThreadStoreError(f"{exc}, or set [paths] threads in cadre.toml to a writable file") from exc
        self.path = self.db.where

    @_guarded
    def create(self, role: str, tool: str = "") -> str:
        """Start a thread for the current user and return its id."""
        thread_id = "t_" + secrets.token_hex(8)
        now = _now()
        self.db.execute(
            "INSERT INTO threads (id, role, tool, created, updated, user_name) VALUES (?, ?, ?, ?, ?, ?)",
            (thread_id, role, tool, now, now, current_user()),
        )
        return thread_id

    @_guarded
    def exists(self, thread_id: str) -> bool:
        """Whether the thread exists and the current user may see it."""
        mine, args = _mine()
        return self.db.fetchone(f"SELECT 1 FROM threads WHERE id = ? {mine}", [thread_id, *args]) is not None  # noqa: S608

    @_guarded
    def append(self, thread_id: str, messages: list[Message], model: str | None = None) -> None:
        """Add messages to the end of a thread, atomically; raises `UnknownThreadError` for another user's."""
        now = _now()
        mine, args = _mine()
        with self.db.transaction(f"cadre.thread:{thread_id}") as tx:
            if not tx.execute(f"UPDATE threads SET updated = ? WHERE id = ? {mine}", [now, thread_id, *args]):  # noqa: S608
                raise _unknown(thread_id)
            row = tx.fetchone("SELECT COALESCE(MAX(seq), 0) FROM thread_messages WHERE thread_id = ?", (thread_id,))
            seq = row[0] if row else 0
            tx.executemany(
                "INSERT INTO thread_messages (thread_id, seq, model, ts, message) VALUES (?, ?, ?, ?, ?)",
                [(thread_id, seq + n, model, now, json.dumps(asdict(m))) for n, m in enumerate(messages, 1)],
            )

    @_guarded
    def messages(self, thread_id: str) -> list[Message]:
        """The thread's messages in order; raises `UnknownThreadError` with the fix."""
        if not self.exists(thread_id):
            raise _unknown(thread_id)
        rows = self.db.fetchall("SELECT message FROM thread_messages WHERE thread_id = ? ORDER BY seq", (thread_id,))
        return [_message(json.loads(r[0])) for r in rows]

    def close(self) -> None:
        self.db.close()


def _unknown(thread_id: str) -> UnknownThreadError:
    return UnknownThreadError(
        f"unknown thread_id '{clip(thread_id)}'. Omit thread_id to start a new thread, "
        "or pass one returned by an earlier call."
    )


def _message(data: dict[str, Any]) -> Message:
    data["tool_calls"] = [ToolCall(**c) for c in data.get("tool_calls", [])]
    return Message(**data)


def default_threads_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("cadre")) / "threads.sqlite"
