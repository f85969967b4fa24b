"""Where Cadre keeps its state: one interface, two backends.

SQLite (the default, one file per store, as before) or PostgreSQL (one database shared by every replica),
chosen by `[storage] url` in cadre.toml or `CADRE_STORAGE_URL`. A store opens its `Database` with
`open_database(target, migrations)`: `target` is a `postgresql://` URL or a file path. SQL is written
once with `?` placeholders in the subset both engines run; the PostgreSQL backend (psycopg 3 and a
connection pool) is imported only when a URL asks for it, so a single-person start never loads it.

Each store keeps its schema as versioned migrations (`cadre_core.storage.migrations`), applied on open.
A URL's password (or `PGPASSWORD`, `~/.pgpass`, which libpq reads) is never logged: messages show
`redact_url(url)`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from cadre_core.storage.base import URL_ENV, Database, Dialect, StorageError, Tx, guarded, is_url, redact_url

if TYPE_CHECKING:
    from cadre_core.config import CadreConfig
    from cadre_core.storage.migrations import Migrations

__all__ = [
    "URL_ENV", "Database", "Dialect", "StorageError", "Tx", "guarded", "is_url", "open_database", "redact_url",
    "schema_version", "storage_url",
]  # fmt: skip


def storage_url(config: CadreConfig | None = None) -> str | None:
    """The PostgreSQL URL to use: `CADRE_STORAGE_URL`, else `[storage] url`; None means the SQLite files.
    Raises `StorageError` for a URL that is not `postgresql://`."""
    url = os.environ.get(URL_ENV) or (config.storage.url if config is not None else None)
    if not url:
        return None
    if not is_url(url):
        raise StorageError(
            f"the storage URL {redact_url(url)!r} is not a PostgreSQL URL; set [storage] url (or {URL_ENV}) to "
            "postgresql://user@host/dbname, or leave it unset to keep the SQLite files"
        )
    return url


def open_database(target: str | Path, migrations: Migrations) -> Database:
    """The database at `target` (a `postgresql://` URL or a SQLite file path), with `migrations` applied.
    Connections to one URL share a pool within a process. Raises `StorageError` naming what to fix."""
    db = _connect(target, migrations.component)
    try:
        migrations.apply(db)
    except BaseException:
        db.close()
        raise
    return db


def schema_version(target: str | Path, migrations: Migrations) -> int | None:
    """How many of `migrations` have run at `target`, running none; None when the store was never created
    there (no file; on PostgreSQL, no row in schema_version and no `migrations.table`)."""
    if not is_url(target) and not Path(target).exists():
        return None
    db = _connect(target, migrations.component, read_only=True)
    try:
        version = migrations.version(db)
        return version if version or not migrations.table or db.columns(migrations.table) else None
    finally:
        db.close()


def _connect(target: str | Path, name: str, *, read_only: bool = False) -> Database:
    if is_url(target):
        from cadre_core.storage.postgres import open_postgres

        return open_postgres(str(target), name)
    from cadre_core.storage.sqlite import SQLiteDatabase

    return SQLiteDatabase(Path(target), name, read_only=read_only)
