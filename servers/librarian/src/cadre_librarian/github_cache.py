"""HTTP cache for the GitHub API: body, ETag and headers per (URL, Accept, token identity), in a SQLite file
or, with `[storage] url`, in the PostgreSQL database replicas share.

Entries younger than the freshness window are served without a request; content addressed by a
full commit SHA never changes and is served forever; older entries are revalidated with
If-None-Match. The token itself is never stored, only a salted hash that tells tokens apart.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import structlog

from cadre_core.storage import Database, StorageError, open_database
from cadre_core.storage.migrations import Migrations

log = structlog.get_logger("cadre.librarian.github")

SHA = re.compile(r"^[0-9a-f]{40}$")
MAX_BODY_BYTES = 8_000_000
"""Larger bodies are not cached (the tree of a huge monorepo, say)."""
KEEP_S = 30 * 24 * 3600
"""Mutable entries unused for this long are dropped when the cache opens."""

MIGRATIONS = Migrations(
    "github_cache",
    (
        """
        CREATE TABLE IF NOT EXISTS responses (
            key TEXT PRIMARY KEY,
            url TEXT NOT NULL,
            accept TEXT NOT NULL,
            etag TEXT,
            status INTEGER NOT NULL,
            headers TEXT NOT NULL,
            body {blob} NOT NULL,
            stored_at DOUBLE PRECISION NOT NULL,
            immutable INTEGER NOT NULL DEFAULT 0
        )
        """,
    ),
    table="responses",
)


def token_identity(token: str | None) -> str:
    """A short salted hash naming the token (or `anonymous`); the token cannot be recovered from it."""
    if not token:
        return "anonymous"
    return hashlib.sha256(b"cadre-github-cache\0" + token.encode()).hexdigest()[:20]


def is_immutable(url: str) -> bool:
    """True when the response is pinned by full commit SHAs: contents/trees/commits at a SHA, compare of two SHAs."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    if "/search/" in path or path.endswith("/releases") or path.count("/") < 3:
        return False
    if "/compare/" in path:
        spec = path.split("/compare/", 1)[1]
        sides = spec.split("...", 1)
        return len(sides) == 2 and all(SHA.match(s) for s in sides)
    query = dict(parse_qsl(parts.query))
    if "/contents/" in path or path.endswith("/contents"):
        return bool(SHA.match(query.get("ref", "")))
    if "/git/trees/" in path or "/commits/" in path:
        return bool(SHA.match(path.rstrip("/").rsplit("/", 1)[-1]))
    if path.endswith("/commits"):
        return bool(SHA.match(query.get("sha", ""))) and "since" not in query and "until" not in query
    return False


@dataclass(frozen=True)
class Cached:
    """One stored response."""

    status: int
    headers: dict[str, str]
    body: bytes
    etag: str | None
    stored_at: float
    immutable: bool

    def age(self, now: float | None = None) -> float:
        return (now if now is not None else time.time()) - self.stored_at

    def fresh(self, fresh_for: float, now: float | None = None) -> bool:
        return self.immutable or self.age(now) < fresh_for


class ResponseCache:
    """Store of GitHub responses in a `cadre_core.storage` database (a SQLite file, or a `postgresql://` URL);
    a broken cache degrades to no cache, never to an error. Safe to call from worker threads."""

    def __init__(self, target: Path | str):
        self.path = target if isinstance(target, str) else Path(target)
        self._conn: Database | None = None
        self._broken = False
        self._lock = threading.Lock()

    @staticmethod
    def key(url: str, accept: str, identity: str) -> str:
        return hashlib.sha256("\0".join((url, accept, identity)).encode()).hexdigest()

    def _db(self) -> Database | None:
        if self._conn is None and not self._broken:
            try:
                self._conn = open_database(self.path, MIGRATIONS)
                self._conn.execute(
                    "DELETE FROM responses WHERE immutable = 0 AND stored_at < ?", (time.time() - KEEP_S,)
                )
            except StorageError as exc:  # its message names the store, password masked
                log.warning("github cache unavailable; continuing without it", error=str(exc))
                self._broken = True
        return self._conn

    def get(self, key: str) -> Cached | None:
        with self._lock:
            return self._get(key)

    def put(self, key: str, url: str, accept: str, status: int, headers: dict[str, str], body: bytes) -> None:
        with self._lock:
            self._put(key, url, accept, status, headers, body)

    def touch(self, key: str, headers: dict[str, str]) -> None:
        """A 304 confirmed the entry: restart its freshness window and keep the newer headers."""
        with self._lock:
            self._touch(key, headers)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _get(self, key: str) -> Cached | None:
        db = self._db()
        if db is None:
            return None
        try:
            row = db.fetchone(
                "SELECT status, headers, body, etag, stored_at, immutable FROM responses WHERE key = ?", (key,)
            )
        except StorageError as exc:
            log.warning("github cache read failed", error=str(exc))
            return None
        if row is None:
            return None
        status, headers, body, etag, stored_at, immutable = row
        return Cached(status, json.loads(headers), bytes(body), etag, stored_at, bool(immutable))

    def _put(self, key: str, url: str, accept: str, status: int, headers: dict[str, str], body: bytes) -> None:
        db = self._db()
        if db is None or len(body) > MAX_BODY_BYTES:
            return
        try:
            db.execute(
                "INSERT INTO responses (key, url, accept, etag, status, headers, body, stored_at, immutable)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET url = excluded.url,"
                " accept = excluded.accept, etag = excluded.etag, status = excluded.status,"
                " headers = excluded.headers, body = excluded.body, stored_at = excluded.stored_at,"
                " immutable = excluded.immutable",
                (
                    key,
                    url,
                    accept,
                    headers.get("etag"),
                    status,
                    json.dumps(headers),
                    body,
                    time.time(),
                    int(is_immutable(url)),
                ),
            )
        except StorageError as exc:
            log.warning("github cache write failed", error=str(exc))

    def _touch(self, key: str, headers: dict[str, str]) -> None:
        db = self._db()
        if db is None:
            return
        try:
            row = db.fetchone("SELECT headers FROM responses WHERE key = ?", (key,))
            if row is None:
                return
            merged = {**json.loads(row[0]), **{k: v for k, v in headers.items() if k.startswith("x-ratelimit")}}
            db.execute(
                "UPDATE responses SET stored_at = ?, headers = ? WHERE key = ?", (time.time(), json.dumps(merged), key)
            )
        except StorageError as exc:
            log.warning("github cache write failed", error=str(exc))
