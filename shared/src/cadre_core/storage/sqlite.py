"""The SQLite backend: one WAL file per store, opened as `cadre_core.db.connect` always has.

One connection per store, used under a lock (threads share it); writers in other processes wait on
SQLite's busy timeout. A `sqlite3.Error` becomes a `StorageError` naming the file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

from cadre_core import db as sqlite_db
from cadre_core.storage.base import StorageError, Tx, rows_as_dicts

_T = TypeVar("_T")
BUSY_TIMEOUT_MS = 15_000
"""Long enough to wait out another process's write; callers that must not wait write in the background."""


class _Statements:
    dialect: Literal["sqlite"] = "sqlite"
    where: str
    name: str
    _conn: sqlite3.Connection

    def _run(self, step: Callable[[sqlite3.Connection], _T]) -> _T:
        try:
            return step(self._conn)
        except sqlite3.Error as exc:
            raise StorageError(f"the {self.name} store at {self.where} failed ({exc}); retry, or fix the file") from exc

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._run(lambda c: c.execute(sql, params).rowcount)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._run(lambda c: c.executemany(sql, rows))

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._run(lambda c: c.execute(sql, params).fetchone())
        return row

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._run(lambda c: c.execute(sql, params).fetchall())

    def fetchdicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            cursor = conn.execute(sql, params)
            return rows_as_dicts([d[0] for d in cursor.description], cursor.fetchall())

        return self._run(read)

    def columns(self, table: str) -> set[str]:
        return {row[1] for row in self.fetchall(f"PRAGMA table_info({table})")}


class _Transaction(_Statements):
    def __init__(self, conn: sqlite3.Connection, where: str, name: str):
        self._conn, self.where, self.name = conn, where, name


class SQLiteDatabase(_Statements):
    """A SQLite file in WAL mode (created if missing; a file that is not a database is moved aside)."""

    def __init__(self, path: Path, name: str = "database", *, read_only: bool = False):
        """Open `path` for the store called `name` (messages say "the {name} store at {path}"); `read_only`
        opens an existing file as it is, changing nothing (no WAL switch, no corrupt file moved aside)."""
        self.path, self.name = path, name
        self.where = str(path)
        try:
            if read_only:
                uri = f"{path.resolve().as_uri()}?mode=ro"
                self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
            else:
                self._conn = sqlite_db.connect(path, busy_timeout_ms=BUSY_TIMEOUT_MS)
        except (sqlite3.Error, OSError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise StorageError(f"the {name} store at {path} cannot be opened ({reason}); fix that path") from exc
        self._lock = threading.RLock()

    def _run(self, step: Callable[[sqlite3.Connection], _T]) -> _T:
        with self._lock:
            return super()._run(step)

    @contextmanager
    def transaction(self, *locks: str) -> Iterator[Tx]:
        with self._lock:
            try:
                with sqlite_db.write_transaction(self._conn) as conn:
                    yield _Transaction(conn, self.where, self.name)
            except sqlite3.Error as exc:
                raise StorageError(
                    f"the {self.name} store at {self.where} failed ({exc}); retry, or fix the file"
                ) from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()
