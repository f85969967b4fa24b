"""Both storage backends for tests: SQLite files in a temp folder, or a fresh schema in the PostgreSQL
named by `CADRE_TEST_PG_URL` (`.ci/run` starts a throwaway cluster and sets it). The `storage` fixture of
the pytest plugin runs a test once per backend; without the URL the PostgreSQL run is skipped, saying so."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote

PG_URL_ENV = "CADRE_TEST_PG_URL"
PG_URL = os.environ.get(PG_URL_ENV)
"""Read at import, before the plugin's isolation fixture clears every CADRE_* variable."""
SKIP_REASON = f"PostgreSQL variant: set {PG_URL_ENV} to a throwaway cluster's URL (.ci/run starts one)"


@dataclass(frozen=True)
class Backend:
    """Where a test's stores live: `target(name)` is what a store opens (a file, or the shared URL)."""

    dialect: Literal["sqlite", "postgresql"]
    root: Path
    url: str | None = None

    def target(self, name: str) -> str | Path:
        return self.url or self.root / f"{name}.sqlite"


def with_schema(url: str, schema: str) -> str:
    """`url` with libpq's `options` setting the search_path to `schema`, so its tables land there."""
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}options={quote(f'-c search_path={schema}')}"


def fresh_schema(url: str) -> tuple[str, str]:
    """Create an empty schema in the database at `url`; its name and a URL whose tables go there."""
    import psycopg

    schema = "cadre_test_" + secrets.token_hex(6)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return schema, with_schema(url, schema)


def drop_schema(url: str, schema: str, schema_url: str) -> None:
    """Close this process's pool for `schema_url` and drop `schema` with everything in it."""
    import psycopg

    from cadre_core.storage.postgres import close_pool

    close_pool(schema_url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
