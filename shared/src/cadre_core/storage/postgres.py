"""The PostgreSQL backend: psycopg 3 with a `psycopg_pool.ConnectionPool` per URL, shared by the stores of
a process. Imported only when `[storage] url` (or `CADRE_STORAGE_URL`) names PostgreSQL.

Connections run in autocommit mode: a statement outside `transaction()` commits on its own. Named locks
are `pg_advisory_xact_lock` on a 64-bit hash of the name, released when the transaction ends
(postgresql.org/docs/current/functions-admin.html#FUNCTIONS-ADVISORY-LOCKS), so they hold across
replicas. `numeric` results (a SUM of bigints) load as float, as SQLite gives them. Commits are
asynchronous (`synchronous_commit = off`), as durable as the SQLite files' WAL with synchronous=NORMAL.
"""

from __future__ import annotations

import functools
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, TypeVar

import psycopg
import psycopg_pool
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.numeric import FloatLoader

from cadre_core.storage.base import StorageError, Tx, redact_url, rows_as_dicts

_T = TypeVar("_T")
POOL_MAX = 10
CONNECT_TIMEOUT_S = 10
LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"


@functools.lru_cache(maxsize=512)
def _pg(sql: str) -> str:
    """`?` placeholders as psycopg's `%s` (a literal `%` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class _Statements:
    dialect: Literal["postgresql"] = "postgresql"
    where: str
    name: str
    _secret: str | None

    def _run(self, step: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        raise NotImplementedError

    def _error(self, exc: Exception) -> StorageError:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if self._secret:
            reason = reason.replace(self._secret, "***")
        return StorageError(f"the {self.name} store at {self.where} failed ({reason}); retry, or check [storage] url")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._run(lambda c: c.execute(_pg(sql), params).rowcount)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        def run(conn: psycopg.Connection[Any]) -> None:
            with conn.cursor() as cursor:
                cursor.executemany(_pg(sql), rows)

        self._run(run)

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._run(lambda c: c.execute(_pg(sql), params).fetchone())
        return row

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._run(lambda c: c.execute(_pg(sql), params).fetchall())

    def fetchdicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        def read(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
            cursor = conn.execute(_pg(sql), params)
            return rows_as_dicts([d.name for d in cursor.description or []], cursor.fetchall())

        return self._run(read)

    def columns(self, table: str) -> set[str]:
        rows = self.fetchall(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = ?",
            (table,),
        )
        return {r[0] for r in rows}


class _Transaction(_Statements):
    def __init__(self, conn: psycopg.Connection[Any], where: str, name: str, secret: str | None):
        self._c, self.where, self.name, self._secret = conn, where, name, secret

    def _run(self, step: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        try:
            return step(self._c)
        except psycopg.Error as exc:
            raise self._error(exc) from None


class _SharedPool:
    def __init__(self, url: str):
        self.users = 0
        self.pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=POOL_MAX,
            # client_encoding: a SQL_ASCII database would otherwise hand back bytes for every text column
            # (psycopg 3 docs, "Strings adaptation")
            kwargs={
                "autocommit": True,
                "application_name": "cadre",
                "connect_timeout": CONNECT_TIMEOUT_S,
                "client_encoding": "utf8",
            },
            configure=_configure,
            check=_check_if_idle,
            open=False,
            name="cadre",
        )


IDLE_CHECK_S = 5.0
"""A pooled connection unused this long is pinged before use (a restarted server leaves dead sockets)."""
_last_used: weakref.WeakKeyDictionary[psycopg.Connection[Any], float] = weakref.WeakKeyDictionary()


def _check_if_idle(conn: psycopg.Connection[Any]) -> None:
    """The pool's check on checkout: ping only a connection idle for IDLE_CHECK_S (a busy one just worked),
    so a routed call pays no extra round trip; a dead one raises and the pool replaces it."""
    now = time.monotonic()
    if now - _last_used.get(conn, 0.0) > IDLE_CHECK_S:
        psycopg_pool.ConnectionPool.check_connection(conn)
    _last_used[conn] = now


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.adapters.register_loader("numeric", FloatLoader)
    # The durability SQLite gets from WAL with synchronous=NORMAL: a commit does not wait for its WAL flush,
    # so a database crash may lose the last fraction of a second of commits but never leaves them half done
    # (postgresql.org/docs/current/wal-async-commit.html). Waiting on fsync cost ~6 ms per write here.
    conn.execute("SET synchronous_commit = off")


_pools: dict[str, _SharedPool] = {}
_pools_lock = threading.Lock()


class PostgresDatabase(_Statements):
    """A handle on the process's pool for one URL; `close()` closes the pool after its last handle."""

    def __init__(self, url: str, shared: _SharedPool, secret: str | None, name: str):
        self._url, self._shared, self._secret, self.name = url, shared, secret, name
        self.where = redact_url(url)
        self._closed = False

    def _run(self, step: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        try:
            with self._shared.pool.connection() as conn:
                return step(conn)
        except psycopg.Error as exc:
            raise self._error(exc) from None

    @contextmanager
    def transaction(self, *locks: str) -> Iterator[Tx]:
        try:
            with self._shared.pool.connection() as conn, conn.transaction():
                for name in sorted(set(locks)):  # one order everywhere: two transactions cannot deadlock
                    conn.execute(LOCK_SQL, (name,))
                yield _Transaction(conn, self.where, self.name, self._secret)
        except psycopg.Error as exc:
            raise self._error(exc) from None

    def close(self) -> None:
        with _pools_lock:
            if self._closed:
                return
            self._closed = True
            self._shared.users -= 1
            if self._shared.users == 0 and _pools.get(self._url) is self._shared:
                del _pools[self._url]
                self._shared.pool.close()


def close_pool(url: str) -> None:
    """Close this process's pool for `url`, whoever still holds handles on it (tests, shutdown)."""
    with _pools_lock:
        shared = _pools.pop(url, None)
    if shared is not None:
        shared.pool.close()


def open_postgres(url: str, name: str = "database") -> PostgresDatabase:
    """A handle on the pool for `url`, connecting first when this process has none; a failure to connect
    raises `StorageError` with libpq's reason and the URL, password masked."""
    try:
        secret = conninfo_to_dict(url).get("password")
    except psycopg.Error:
        raise StorageError(
            f"the storage URL {redact_url(url)} cannot be parsed; write it as postgresql://user@host:port/dbname"
        ) from None
    with _pools_lock:
        shared = _pools.get(url)
        if shared is None:
            _check_connects(url, secret)  # fails fast, with libpq's reason (a pool would retry in silence)
            shared = _SharedPool(url)
            try:
                shared.pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
            except psycopg.Error as exc:
                shared.pool.close()
                raise _connect_error(url, secret, exc) from None
            _pools[url] = shared
        shared.users += 1
    return PostgresDatabase(url, shared, str(secret) if secret else None, name)


def _check_connects(url: str, secret: object) -> None:
    try:
        psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S).close()
    except psycopg.Error as exc:
        raise _connect_error(url, secret, exc) from None


def _connect_error(url: str, secret: object, exc: Exception) -> StorageError:
    """Why `url` cannot be reached, in libpq's words, with the URL's password masked."""
    reason = " ".join(str(exc).split()) or type(exc).__name__
    if secret:
        reason = reason.replace(str(secret), "***")
    return StorageError(
        f"cannot connect to PostgreSQL at {redact_url(url)} ({reason}); check [storage] url (or CADRE_STORAGE_URL), "
        "that the server runs, and the password (in the URL, PGPASSWORD or ~/.pgpass)"
    )
