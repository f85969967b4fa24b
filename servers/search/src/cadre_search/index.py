"""The index: one SQLite database per workspace root, refreshed incrementally.

Tables: `files` (path, size, mtime) and `dirs` (path, mtime) for the staleness check,
`chunks` plus the FTS5 table `chunks_fts` over them, and `symbols`. Each refresh stats
the known directories and files, rescans only directories whose mtime changed and
re-indexes only files whose size or mtime changed. Writers take SQLite's write lock
per batch, so two processes can share one index.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from cadre_search.build import FileQueue
from cadre_search.chunks import Symbol, chunk_file
from cadre_search.files import (
    DEFAULT_MAX_BYTES,
    IGNORE_FILES,
    FileEntry,
    IgnoreRules,
    language_of,
    read_text,
    scan_dir,
    walk,
)
from cadre_search.tokens import compound_parts, parts, path_terms

SCHEMA_VERSION = "3"
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    lang TEXT, nchunks INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS dirs (path TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (id INTEGER PRIMARY KEY, path TEXT NOT NULL, start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL, symbol TEXT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL,
    parts TEXT NOT NULL, pathterms TEXT NOT NULL, symterms TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_path ON chunks(path);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(body, parts, pathterms, symterms,
    content='chunks', content_rowid='id', tokenize="unicode61 tokenchars '_'");
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_vocab USING fts5vocab(chunks_fts, 'row');
CREATE TABLE IF NOT EXISTS symbols (name TEXT NOT NULL, lname TEXT NOT NULL, kind TEXT NOT NULL,
    path TEXT NOT NULL, start_line INTEGER NOT NULL, end_line INTEGER NOT NULL, container TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS symbols_lname ON symbols(lname);
CREATE INDEX IF NOT EXISTS symbols_path ON symbols(path);
"""
BATCH_FILES = 200
WORKER_FILES = 50
PARALLEL_MIN_FILES = 400


@dataclass
class RefreshStats:
    files: int
    refreshed: int
    removed: int
    seconds: float
    stale: bool = False
    """True when another process held the write lock and the index was not updated."""


@dataclass
class _KnownState:
    version: int
    files: dict[str, tuple[int, int]]
    dirs: dict[str, int]
    ignores: dict[str, int]


@dataclass(frozen=True)
class Prepared:
    """One file read, chunked and turned into index rows (done in worker processes)."""

    entry: FileEntry
    language: str | None
    rows: list[tuple[Any, ...]]
    """(path, start, end, symbol, kind, body, parts, pathterms, symterms) per chunk."""
    symbols: list[Symbol]


def prepare(root: str, entry: FileEntry) -> Prepared | None:
    """Read and chunk one file; None if it vanished or cannot be read."""
    try:
        text = read_text(Path(root) / entry.path, max_bytes=max(entry.size, DEFAULT_MAX_BYTES))
    except OSError:
        return None
    language = language_of(entry.path)
    try:
        chunks, symbols = chunk_file(text, language)
    except Exception:  # a grammar failure must not stop indexing: fall back to windows
        chunks, symbols = chunk_file(text, None)
    pterms = path_terms(entry.path)
    rows = []
    for chunk in chunks:
        name = chunk.symbol.rsplit(".", 1)[-1] if chunk.symbol else ""
        sterms = " ".join([name.lower(), *parts(name)]) if name else ""
        rows.append(
            (entry.path, chunk.start_line, chunk.end_line, chunk.symbol, chunk.kind, chunk.text,
             compound_parts(chunk.text), pterms, sterms)
        )  # fmt: skip
    return Prepared(entry, language, rows, symbols)


def _prepare_many(args: tuple[str, list[FileEntry]]) -> list[Prepared | None]:
    root, entries = args
    return [prepare(root, e) for e in entries]


def default_index_path(root: Path) -> Path:
    import platformdirs

    key = hashlib.sha256(str(root).encode()).hexdigest()[:16]
    base = os.environ.get("CADRE_SEARCH_INDEX_DIR") or os.path.join(platformdirs.user_cache_dir("cadre"), "search")
    return Path(base) / f"{root.name or 'root'}-{key}.sqlite"


class Index:
    """The search index of one root."""

    def __init__(self, root: Path, path: Path | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES):
        self.root = Path(root).resolve()
        self.path = path or default_index_path(self.root)
        self.max_bytes = max_bytes
        self._lock = threading.RLock()
        self._refresh_lock = threading.Lock()
        self._root_str = str(self.root)
        self._cached: _KnownState | None = None
        self._chunk_count: tuple[int, int] | None = None
        self.conn = self._open()
        self._reader: Index | None = None
        self.indexing: tuple[int, int] | None = None
        """(done, total) while a refresh is writing."""

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for attempt in (1, 2):
            try:
                conn = sqlite3.connect(self.path, timeout=5, check_same_thread=False, isolation_level=None)
                conn.execute("PRAGMA busy_timeout=5000")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=OFF")  # a rebuildable cache: no fsync per batch
                conn.executescript(SCHEMA)
                version = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
                if version is None:
                    conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
                elif version[0] != SCHEMA_VERSION:
                    raise sqlite3.DatabaseError("index schema is out of date")
                return conn
            except sqlite3.DatabaseError:
                if attempt == 2:
                    raise
                self._discard()
        raise AssertionError("unreachable")

    def _discard(self) -> None:
        """Delete a corrupt or outdated index; it is a cache and will be rebuilt."""
        for suffix in ("", "-wal", "-shm"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)

    def rebuild(self) -> None:
        """Throw the index away and start a fresh one."""
        with self._lock:
            self._close_reader()
            self.conn.close()
            self._discard()
            self._cached = None
            self.conn = self._open()

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def query(self, sql: str, args: Iterable[object] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self.conn.execute(sql, tuple(args)).fetchall()

    def reader(self) -> Index:
        """This index on a second connection, for reads while a refresh writes: in WAL mode they need
        not wait for the writer's batches. Never refresh it."""
        with self._lock:
            if self._reader is None:
                view = copy.copy(self)
                view._lock, view._cached, view._chunk_count, view._reader = threading.RLock(), None, None, None
                view.conn = sqlite3.connect(self.path, timeout=5, check_same_thread=False, isolation_level=None)
                view.conn.execute("PRAGMA busy_timeout=5000")
                self._reader = view
            return self._reader

    def complete(self) -> bool:
        """Whether a refresh has ever finished: only then does the index hold every file."""
        return bool(self.query("SELECT 1 FROM dirs LIMIT 1"))

    def file_count(self) -> int:
        return int(self.query("SELECT COUNT(*) FROM files")[0][0])

    def chunk_count(self) -> int:
        """Chunks in the index, cached until the index changes."""
        with self._lock:
            version = self.conn.execute("PRAGMA data_version").fetchone()[0]
            if self._chunk_count is None or self._chunk_count[0] != version:
                self._chunk_count = (version, self.conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])
            return self._chunk_count[1]

    # --- refresh -------------------------------------------------------------------------

    def refresh(
        self, progress: Callable[[int, int], None] | None = None, *, queued: Callable[[FileQueue], None] | None = None
    ) -> RefreshStats:
        """Bring the index up to date with the files on disk; `queued` is handed the files to index first."""
        started = time.perf_counter()
        if not self.root.is_dir():
            from cadre_core.errors import WorkspaceError

            raise WorkspaceError(f"search root {self.root} is missing or not a directory; pass an existing --root")
        if not self._refresh_lock.acquire(blocking=False):
            # another thread of this process is refreshing; wait for it, then report
            with self._refresh_lock:
                pass
            return RefreshStats(self.file_count(), 0, 0, time.perf_counter() - started)
        try:
            state = self._state()
            current, dir_mtimes, changed = self._scan(state)
            known = state.files
            removed = [p for p in known if p not in current]
            to_index = [e for p, e in current.items() if known.get(p) != (e.size, e.mtime_ns)]
            if not changed and not removed and not to_index:
                return RefreshStats(len(current), 0, 0, time.perf_counter() - started)
            queue = FileQueue(to_index)
            if queued:
                queued(queue)
            try:
                self._write(queue, removed, dir_mtimes, progress)
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                return RefreshStats(len(known), 0, 0, time.perf_counter() - started, stale=True)
            finally:
                self._cached = self._chunk_count = None
            return RefreshStats(len(current), len(to_index), len(removed), time.perf_counter() - started)
        finally:
            self.indexing = None
            self._refresh_lock.release()

    def _state(self) -> _KnownState:
        """What the index knows, cached until this or another connection writes."""
        with self._lock:
            version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        if self._cached is None or self._cached.version != version:
            files = {p: (size, mtime) for p, size, mtime in self.query("SELECT path, size, mtime_ns FROM files")}
            dirs = dict(self.query("SELECT path, mtime_ns FROM dirs"))
            meta = dict(self.query("SELECT key, value FROM meta WHERE key = 'ignore_files'"))
            ignores = json.loads(meta.get("ignore_files", "{}"))
            self._cached = _KnownState(version, files, dirs, ignores)
        return self._cached

    def _full(self, rel: str) -> str:
        return f"{self._root_str}/{rel}" if rel else self._root_str

    def _scan(self, state: _KnownState) -> tuple[dict[str, FileEntry], dict[str, int], bool]:
        """Files on disk now, directory mtimes, and whether the directory layout changed.

        Cheap when nothing moved: one stat per known directory, ignore file and file.
        """
        rules = IgnoreRules(self.root)
        if not state.dirs or self._ignores_now(state.ignores) != state.ignores:
            return self._walk_all(rules)
        changed_dirs: list[str] = []
        dir_mtimes: dict[str, int] = {}
        for rel, mtime in state.dirs.items():
            try:
                now = os.stat(self._full(rel)).st_mtime_ns
            except OSError:
                continue  # removed: its files vanish below
            dir_mtimes[rel] = now
            if now != mtime:
                changed_dirs.append(rel)
        current: dict[str, FileEntry] = {}
        rescanned = set(changed_dirs)
        for rel_dir in changed_dirs:
            if any(f"{rel_dir}/{n}" not in state.ignores and os.path.exists(self._full(f"{rel_dir}/{n}".lstrip("/")))
                   for n in IGNORE_FILES):  # fmt: skip
                return self._walk_all(rules)  # a new ignore file changes what belongs in the index
            found, subdirs = scan_dir(self.root, rel_dir, max_bytes=self.max_bytes, rules=rules)
            current.update((f.path, f) for f in found)
            for sub in subdirs:
                if sub not in state.dirs:
                    more, visited = walk(self.root, max_bytes=self.max_bytes, rules=rules, start=sub)
                    current.update((f.path, f) for f in more)
                    dir_mtimes.update(self._dir_mtimes(visited))
                    rescanned.update(visited)
        stat = os.stat
        for path in state.files:
            slash = path.rfind("/")
            parent = path[:slash] if slash >= 0 else ""
            if parent in rescanned or parent not in dir_mtimes:
                continue
            try:
                st = stat(f"{self._root_str}/{path}")
            except OSError:
                continue
            current[path] = FileEntry(path, st.st_size, st.st_mtime_ns)
        return current, dir_mtimes, bool(changed_dirs) or len(dir_mtimes) != len(state.dirs)

    def _walk_all(self, rules: IgnoreRules) -> tuple[dict[str, FileEntry], dict[str, int], bool]:
        files, dirs = walk(self.root, max_bytes=self.max_bytes, rules=rules)
        return {f.path: f for f in files}, self._dir_mtimes(dirs), True

    def _dir_mtimes(self, dirs: Iterable[str]) -> dict[str, int]:
        out = {}
        for rel in dirs:
            try:
                out[rel] = os.stat(self._full(rel)).st_mtime_ns
            except OSError:
                continue
        return out

    def _ignores_now(self, known: dict[str, int]) -> dict[str, int]:
        """Current mtimes of the ignore files the index was built with."""
        found = {}
        for key in known:
            try:
                found[key] = os.stat(self._full(key.lstrip("/"))).st_mtime_ns
            except OSError:
                continue
        return found

    def _ignore_files(self, dirs: Iterable[str]) -> dict[str, int]:
        found = {}
        for rel in dirs:
            for name in IGNORE_FILES:
                try:
                    found[f"{rel}/{name}"] = os.stat(self._full(f"{rel}/{name}".lstrip("/"))).st_mtime_ns
                except OSError:
                    continue
        return found

    def _write(
        self,
        queue: FileQueue,
        removed: list[str],
        dir_mtimes: dict[str, int],
        progress: Callable[[int, int], None] | None,
    ) -> None:
        total = len(queue)
        self.indexing = (0, total)
        if progress and total:
            progress(0, total)
        try:
            with self._lock:
                self._transaction(partial(self._delete_files, removed))
            done = 0
            for entries, batch in self._prepared_batches(queue):
                with self._lock:
                    self._transaction(partial(self._store_all, batch))
                queue.stored(e.path for e in entries)
                done += len(batch)
                self.indexing = (done, total)
                if progress:
                    progress(done, total)
        finally:
            queue.close()
        with self._lock:

            def finish() -> None:
                self.conn.execute("DELETE FROM dirs")
                self.conn.executemany("INSERT INTO dirs VALUES (?, ?)", dir_mtimes.items())
                self.conn.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('ignore_files', ?)",
                    (json.dumps(self._ignore_files(dir_mtimes)),),
                )

            self._transaction(finish)

    def _prepared_batches(self, queue: FileQueue) -> Iterable[tuple[list[FileEntry], list[Prepared | None]]]:
        """(entries, their rows) in the queue's order, parsed by worker processes for large refreshes."""
        root = str(self.root)
        if len(queue) < PARALLEL_MIN_FILES or (os.cpu_count() or 1) < 2:
            while batch := queue.take(BATCH_FILES):
                yield batch, [prepare(root, e) for e in batch]
            return
        import multiprocessing
        from concurrent.futures import Future, ProcessPoolExecutor

        context = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
        workers = min(4, os.cpu_count() or 2)
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            inflight: deque[tuple[list[FileEntry], Future[list[Prepared | None]]]] = deque()

            def submit() -> None:  # taken late, so files a query hurries go next
                if batch := queue.take(WORKER_FILES):
                    inflight.append((batch, pool.submit(_prepare_many, (root, batch))))

            for _ in range(workers + 1):
                submit()
            while inflight:
                batch, future = inflight.popleft()
                result = future.result()
                submit()
                yield batch, result

    def _transaction(self, work: Callable[[], object]) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            work()
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def _delete_files(self, paths: Iterable[str]) -> None:
        for path in paths:
            self._delete_file(path)

    def _store_all(self, batch: Iterable[Prepared | None]) -> None:
        for prepared in batch:
            if prepared is not None:
                self._store(prepared)

    def _delete_file(self, path: str) -> None:
        rows = self.conn.execute(
            "SELECT id, body, parts, pathterms, symterms FROM chunks WHERE path = ?", (path,)
        ).fetchall()
        self.conn.executemany(
            "INSERT INTO chunks_fts(chunks_fts, rowid, body, parts, pathterms, symterms) "
            "VALUES ('delete', ?, ?, ?, ?, ?)",
            rows,
        )
        self.conn.execute("DELETE FROM chunks WHERE path = ?", (path,))
        self.conn.execute("DELETE FROM symbols WHERE path = ?", (path,))
        self.conn.execute("DELETE FROM files WHERE path = ?", (path,))

    def _store(self, prepared: Prepared) -> None:
        entry, rows = prepared.entry, prepared.rows
        if self.conn.execute("SELECT 1 FROM files WHERE path = ?", (entry.path,)).fetchone():
            self._delete_file(entry.path)  # re-index, or another process indexed it meanwhile
        first = self.conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM chunks").fetchone()[0]
        ids = range(first, first + len(rows))
        self.conn.executemany(
            "INSERT INTO chunks (id, path, start_line, end_line, symbol, kind, body, parts, pathterms, symterms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(i, *row) for i, row in zip(ids, rows, strict=True)],
        )
        self.conn.executemany(
            "INSERT INTO chunks_fts(rowid, body, parts, pathterms, symterms) VALUES (?, ?, ?, ?, ?)",
            [(i, row[5], row[6], row[7], row[8]) for i, row in zip(ids, rows, strict=True)],
        )
        self.conn.executemany(
            "INSERT INTO symbols VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (s.name, s.name.lower(), s.kind, entry.path, s.start_line, s.end_line, s.container)
                for s in prepared.symbols
            ],
        )
        self.conn.execute(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)",
            (entry.path, entry.size, entry.mtime_ns, prepared.language, len(rows)),
        )

    def close(self) -> None:
        with self._lock:
            self._close_reader()
            self.conn.close()
