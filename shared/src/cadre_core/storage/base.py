"""The storage interface both backends implement (see `cadre_core.storage`)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, ParamSpec, Protocol, TypeVar

from cadre_core.errors import CadreError

Dialect = Literal["sqlite", "postgresql"]
URL_ENV = "CADRE_STORAGE_URL"
SCHEMES = ("postgresql://", "postgres://")


class StorageError(CadreError):
    """A store cannot be opened, read or written; the message names the store (password masked)."""

    retryable = True


class Tx(Protocol):
    """Statements on one connection: inside `Database.transaction()`, or one at a time (autocommit)."""

    @property
    def dialect(self) -> Dialect: ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None: ...

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def fetchdicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows as dicts keyed by column name."""
        ...

    def columns(self, table: str) -> set[str]:
        """The column names `table` has (empty when it does not exist)."""
        ...


class Database(Tx, Protocol):
    """A store's database. Outside a transaction each statement commits on its own. Thread-safe."""

    where: str
    """The file path or the URL with its password masked: safe in any message."""

    def transaction(self, *locks: str) -> AbstractContextManager[Tx]:
        """A write transaction: committed on exit, rolled back on an exception. Each of `locks` (a name, such
        as a budget scope) is held until it ends, across processes and machines; on SQLite the whole
        file is locked from the start (BEGIN IMMEDIATE), which serialises writers anyway."""
        ...

    def close(self) -> None: ...


def is_url(target: object) -> bool:
    """Whether `target` names a PostgreSQL database rather than a file."""
    return isinstance(target, str) and target.startswith(SCHEMES)


_PASSWORD = re.compile(r"(?P<head>://[^:/?#@]*:)[^@/?#]*@")
_PASSWORD_PARAM = re.compile(r"(?i)(password=)[^&\s]*")


def redact_url(url: str) -> str:
    """`url` with any password (userinfo or `?password=`) replaced by `***`."""
    return _PASSWORD_PARAM.sub(r"\1***", _PASSWORD.sub(r"\g<head>***@", url))


def rows_as_dicts(names: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(names, row, strict=True)) for row in rows]


_P = ParamSpec("_P")
_R = TypeVar("_R")


def guarded(error: type[Exception], hint: str = "") -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Decorate a store method so a `StorageError` becomes `error`, its message followed by `hint`."""

    def decorate(method: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(method)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return method(*args, **kwargs)
            except StorageError as exc:
                raise error(f"{exc}{hint}") from exc

        return wrapper

    return decorate
