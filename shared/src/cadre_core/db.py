"""SQLite connections set up the same way everywhere: WAL, a busy timeout, no surprises."""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import structlog

log = structlog.get_logger("cadre.db")


def connect(path: Path | str, *, schema: str = "", busy_timeout_ms: int = 2000) -> sqlite3.Connection:
    """Open (creating if needed) a WAL database and apply `schema`.

    A file that is not a database is moved aside to `<name>.corrupt-<time>`
    and a fresh one is created, so the old bytes are kept for inspection.
    """
    path = Path(path)
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _open(path, schema, busy_timeout_ms)
    except sqlite3.DatabaseError as exc:
        if "not a database" not in str(exc) and "malformed" not in str(exc):
            raise
        aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
        path.rename(aside)
        for suffix in ("-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        log.warning("corrupt database moved aside; starting a new one", path=str(path), kept_as=str(aside))
        return _open(path, schema, busy_timeout_ms)


def _open(path: Path, schema: str, busy_timeout_ms: int) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=busy_timeout_ms / 1000, check_same_thread=False, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        deadline = time.monotonic() + busy_timeout_ms / 1000
        _while_locked(lambda: conn.execute("PRAGMA journal_mode=WAL"), deadline)
        conn.execute("PRAGMA synchronous=NORMAL")
        if schema:
            _while_locked(lambda: conn.executescript(schema), deadline)
    except Exception:
        conn.close()
        raise
    return conn


def _while_locked(step: Callable[[], Any], deadline: float) -> None:
    """Run `step`, retrying while another process holds the lock it needs: switching to WAL and creating
    tables can fail at once with "database is locked" (SQLite's busy handler is not always called)."""
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Hold the database's write lock from the first statement (BEGIN IMMEDIATE); commit, or roll back on
    any exception, so reads made inside see no other writer until the commit."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def add_columns(conn: sqlite3.Connection, table: str, columns: dict[str, str]) -> None:
    """Add the `columns` (name: SQL type) that `table` lacks: a store written by an older version gains them.
    Checked again under the write lock, since another process may be doing the same."""

    def missing() -> list[str]:
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        return [name for name in columns if name not in have]

    if not missing():
        return
    with write_transaction(conn):
        for name in missing():
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {columns[name]}")


class _Store(Protocol):
    @property
    def path(self) -> object: ...


_S = TypeVar("_S", bound=_Store)
_P = ParamSpec("_P")
_R = TypeVar("_R")
_Method = Callable[Concatenate[_S, _P], _R]


def guarded(error: type[Exception], what: str, config_key: str) -> Callable[[_Method[_S, _P, _R]], _Method[_S, _P, _R]]:
    """Decorate a store method so a SQLite failure becomes `error`, naming the file and the fix."""

    def decorate(method: _Method[_S, _P, _R]) -> _Method[_S, _P, _R]:
        @functools.wraps(method)
        def wrapper(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return method(self, *args, **kwargs)
            except sqlite3.Error as exc:
                raise error(
                    f"the {what} at {self.path} is unavailable ({exc}); retry, or set {config_key} "
                    "in cadre.toml to a writable file"
                ) from exc

        return wrapper

    return decorate
