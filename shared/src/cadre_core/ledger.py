"""The ledger: one row per model attempt, written in the background.

A write never blocks or fails a tool call: rows go on a queue that a worker
thread drains into the store. If the store cannot be opened or written, rows
are kept in memory and a warning is logged once.
"""

from __future__ import annotations

import atexit
import queue
import threading
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import structlog

from cadre_core.identity import current_user
from cadre_core.logs import ensure_logging
from cadre_core.storage import StorageError, open_database, redact_url
from cadre_core.storage.migrations import AddColumns, Migrations

log = structlog.get_logger("cadre.ledger")

Outcome = Literal["ok", "error", "fallback", "off_rails", "budget_refused", "cancelled"]
GROUPINGS = {
    "role": "role",
    "model": "provider || ':' || model",
    "day": "day",
    "thread": "thread_id",
    "user": "user_name",
}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class LedgerRow:
    """One model attempt."""

    role: str
    provider: str
    model: str
    outcome: Outcome
    server: str = ""
    tool: str = ""
    thread_id: str | None = None
    attempt: int = 1
    error_class: str | None = None
    detector: str | None = None
    message: str | None = None
    """Why a validator or detector flagged the answer; stored redacted, at most MESSAGE_MAX_CHARS."""
    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float | None = None
    price_version: str | None = None
    latency_ms: float = 0.0
    ts: str = field(default_factory=_now)
    user: str | None = field(default_factory=current_user)
    """The signed-in user the call was made for (`cadre_core.identity`); None over stdio."""

    @property
    def day(self) -> str:
        return self.ts[:10]


_FIELDS = [f.name for f in fields(LedgerRow)] + ["day"]
_COLUMNS = ["user_name" if name == "user" else name for name in _FIELDS]
"""Stored as user_name: `user` is a reserved word in PostgreSQL, where unquoted it means the session's role."""
MIGRATIONS = Migrations(
    "ledger",
    (
        """
        CREATE TABLE IF NOT EXISTS attempts (
            id {id},
            ts TEXT NOT NULL, day TEXT NOT NULL,
            server TEXT NOT NULL DEFAULT '', tool TEXT NOT NULL DEFAULT '', thread_id TEXT,
            role TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL, attempt INTEGER NOT NULL,
            outcome TEXT NOT NULL, error_class TEXT, detector TEXT, message TEXT,
            input_tokens INTEGER NOT NULL, cache_read_tokens INTEGER NOT NULL,
            cache_write_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
            reasoning_tokens INTEGER NOT NULL,
            cost_usd DOUBLE PRECISION, price_version TEXT, latency_ms DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX IF NOT EXISTS attempts_day ON attempts(day);
        CREATE INDEX IF NOT EXISTS attempts_thread ON attempts(thread_id)
        """,
        AddColumns("attempts", {"message": "TEXT"}),  # a ledger from before messages were kept
        "ALTER TABLE attempts ADD COLUMN user_name TEXT; CREATE INDEX attempts_user_day ON attempts(user_name, day)",
    ),
    table="attempts",
)
MESSAGE_MAX_CHARS = 500


def clean_message(text: str) -> str:
    """`text` with secrets redacted, cut to MESSAGE_MAX_CHARS (an answer quoted in a validator's message
    may hold anything the model saw)."""
    from cadre_core.redact import redact

    text = redact(text)[0]
    return text if len(text) <= MESSAGE_MAX_CHARS else text[: MESSAGE_MAX_CHARS - 1] + "…"


class LedgerStore(Protocol):
    """Where rows live."""

    def append(self, rows: list[LedgerRow]) -> None: ...

    def summary(self, by: str, since_day: str | None = None) -> list[dict[str, Any]]: ...

    def rows(
        self,
        thread_id: str | None = None,
        limit: int = 1000,
        *,
        since_day: str | None = None,
        role: str | None = None,
    ) -> list[dict[str, Any]]: ...


class SQLLedgerStore:
    """The ledger in a `cadre_core.storage` database: a SQLite file (WAL) or PostgreSQL."""

    def __init__(self, target: Path | str):
        """Open the ledger at `target`, a file path or a `postgresql://` URL; raises `StorageError`."""
        self.db = open_database(target, MIGRATIONS)
        self.path = self.db.where

    def append(self, rows: list[LedgerRow]) -> None:
        placeholders = ", ".join("?" for _ in _COLUMNS)
        values = [tuple({**asdict(r), "day": r.day}[c] for c in _FIELDS) for r in rows]
        with self.db.transaction() as tx:
            tx.executemany(f"INSERT INTO attempts ({', '.join(_COLUMNS)}) VALUES ({placeholders})", values)  # noqa: S608

    def summary(self, by: str, since_day: str | None = None) -> list[dict[str, Any]]:
        key = GROUPINGS[by]
        where, args = ("WHERE day >= ?", [since_day]) if since_day else ("", [])
        sql = f"""
            SELECT {key} AS key, COUNT(*) AS attempts,
                   SUM(CASE WHEN outcome = 'ok' THEN 1 ELSE 0 END) AS ok,
                   SUM(CASE WHEN outcome NOT IN ('ok', 'budget_refused') THEN 1 ELSE 0 END) AS failed,
                   SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens,
                   SUM(cost_usd) AS cost_usd,
                   SUM(CASE WHEN cost_usd IS NULL AND outcome = 'ok' THEN 1 ELSE 0 END) AS unpriced,
                   AVG(latency_ms) AS avg_latency_ms
            FROM attempts {where} GROUP BY {key} ORDER BY cost_usd DESC, attempts DESC
        """  # noqa: S608 - key comes from GROUPINGS
        return self.db.fetchdicts(sql, args)

    def settled_after_crash(self, since_day: str | None = None) -> dict[str, Any]:
        """Calls whose reservation was settled because their process died: `{calls, cost_usd}`."""
        where, args = "error_class = 'process_died'", []
        if since_day:
            where, args = where + " AND day >= ?", [since_day]
        row = self.db.fetchone(f"SELECT COUNT(*), COALESCE(SUM(cost_usd), 0) FROM attempts WHERE {where}", args)  # noqa: S608
        calls, cost = row or (0, 0.0)
        return {"calls": calls, "cost_usd": round(cost, 6)}

    def rows(
        self,
        thread_id: str | None = None,
        limit: int = 1000,
        *,
        since_day: str | None = None,
        role: str | None = None,
    ) -> list[dict[str, Any]]:
        """The newest `limit` attempts, oldest first, of a thread, a role, and on or after a UTC day."""
        filters = {"thread_id = ?": thread_id, "day >= ?": since_day, "role = ?": role}
        clauses = [c for c, v in filters.items() if v is not None]
        args: list[Any] = [v for v in filters.values() if v is not None]
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self.db.fetchdicts(f"SELECT * FROM attempts {where} ORDER BY id DESC LIMIT ?", [*args, limit])  # noqa: S608
        for row in rows:
            row["user"] = row.pop("user_name", None)
        return rows[::-1]

    def close(self) -> None:
        self.db.close()


class Ledger:
    """Records attempts without ever blocking the caller."""

    def __init__(self, path: Path | str | None, *, store: LedgerStore | None = None, url: str | None = None):
        """Rows go to `store`, else (opened on first write) PostgreSQL at `url`, else the SQLite file `path`."""
        self.path = path
        self._url = url
        self._store = store
        ensure_logging()
        self._opened = store is not None
        self._queue: queue.SimpleQueue[LedgerRow | None] = queue.SimpleQueue()
        self._pending = 0
        self._idle = threading.Condition()
        self.unwritten: list[LedgerRow] = []
        self._warned = False
        self._worker = threading.Thread(target=self._drain, name="cadre-ledger", daemon=True)
        self._worker.start()
        atexit.register(self.flush, 2.0)

    def record(self, row: LedgerRow) -> None:
        """Queue a row; returns at once."""
        with self._idle:
            self._pending += 1
        self._queue.put(row)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, stop the worker and close the store."""
        self.flush(timeout)
        self._queue.put(None)
        self._worker.join(timeout)
        atexit.unregister(self.flush)
        if self._store is not None and hasattr(self._store, "close"):
            self._store.close()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until queued rows are written (or kept in memory); True if drained."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    @property
    def store(self) -> LedgerStore | None:
        """The store, opened on first use; None if it cannot be opened."""
        if not self._opened:
            self._opened = True
            try:
                self._store = SQLLedgerStore(self._url or self.path or default_ledger_path())
            except StorageError as exc:
                self._warn("cannot open the ledger; costs are kept in memory only", exc)
        return self._store

    def _drain(self) -> None:
        while True:
            batch = [self._queue.get()]
            while batch[-1] is not None:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if batch[-1] is None:
                return
            rows = [r for r in batch if r is not None]
            for row in rows:
                if row.message:
                    row.message = clean_message(row.message)
            try:
                store = self.store
                if store is None:
                    raise StorageError("ledger unavailable")
                store.append(rows)
            except Exception as exc:
                self.unwritten.extend(rows)
                del self.unwritten[:-10_000]
                self._warn("ledger write failed; rows kept in memory", exc)
            finally:
                with self._idle:
                    self._pending -= len(batch)
                    self._idle.notify_all()

    def _warn(self, message: str, exc: Exception) -> None:
        if not self._warned:
            self._warned = True
            where = redact_url(self._url) if self._url else str(self.path)
            log.warning(message, path=where, error=str(exc))


def open_ledger_store(config: Any) -> SQLLedgerStore | None:
    """The ledger `config` names, for reading: `[storage] url`, else its file; None when that file does
    not exist yet (nothing was recorded)."""
    from cadre_core.storage import storage_url

    url = storage_url(config)
    path = config.paths.ledger or default_ledger_path()
    return SQLLedgerStore(url) if url else SQLLedgerStore(path) if Path(path).exists() else None


def default_ledger_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("cadre")) / "ledger.sqlite"
