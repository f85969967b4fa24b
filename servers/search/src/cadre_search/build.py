"""The first build of a large index runs in the background; queries meanwhile get an early answer.

A query on an index that has never been completely built starts the build in a daemon thread
and waits only for the files it can hit: a direct scan scores every file not yet indexed by the
query's terms (file-level BM25 over the raw bytes, plus its path and definitions), the best ones
jump the build's queue, and once they are stored the normal ranker answers, with a note that the
index is still building. When the build finishes, queries use the complete index as before.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from cadre_search.files import FileEntry

if TYPE_CHECKING:
    from cadre_search.index import Index
    from cadre_search.query import QueryPlan

EARLY_MIN_BYTES = 8_000_000
"""A first build smaller than this is simply waited for: it takes about a second."""
EARLY_FILES = 50
EARLY_BYTES = 2_000_000
"""At most this many files, and about this many bytes, are indexed before an early answer."""
EARLY_WAIT_S = 30.0
HOLD_S = 5.0
FILL_FILES, FILL_BYTES = 60, 1_500_000
"""Files that match the query little or not at all, indexed along with the best ones so that the
ranker's term statistics (document frequencies) resemble those of the whole tree."""
SCAN_TERMS = 24
K1, B = 1.2, 0.75


class FileQueue:
    """The files a refresh still has to index, in order, with some moved to the front on request.

    Thread-safe: the writer takes batches and reports them stored; queries move files forward and
    wait for them.
    """

    def __init__(self, entries: Iterable[FileEntry]):
        self._waiting = {e.path: e for e in entries}
        self.total = len(self._waiting)
        self._urgent: deque[str] = deque()
        self._taken: set[str] = set()
        self._stored: set[str] = set()
        self._closed = False
        self._changed = threading.Condition()
        self._go = threading.Event()
        self._go.set()
        self._hold_until = 0.0

    def hold(self, seconds: float) -> None:
        """Hand out nothing until `hurry` is called or `seconds` pass: a query is choosing what goes first."""
        self._go.clear()
        self._hold_until = time.monotonic() + seconds

    def __len__(self) -> int:
        return self.total

    def pending(self) -> list[FileEntry]:
        """Files neither stored nor being indexed now."""
        with self._changed:
            return list(self._waiting.values())

    @property
    def stored_count(self) -> int:
        return len(self._stored)

    def release(self) -> None:
        """End a hold: hand out files in order again."""
        self._go.set()

    def take(self, n: int) -> list[FileEntry]:
        """Up to `n` files to index next: requested ones first, then in the original order."""
        self._go.wait(max(0.0, self._hold_until - time.monotonic()))
        with self._changed:
            out: list[FileEntry] = []
            while self._urgent and len(out) < n:
                entry = self._waiting.pop(self._urgent.popleft(), None)
                if entry is not None:
                    out.append(entry)
            while self._waiting and len(out) < n:
                out.append(self._waiting.pop(next(iter(self._waiting))))
            self._taken.update(e.path for e in out)
            return out

    def stored(self, paths: Iterable[str]) -> None:
        with self._changed:
            for path in paths:
                self._taken.discard(path)
                self._stored.add(path)
            self._changed.notify_all()

    def close(self) -> None:
        """No more files will be stored (the refresh ended, or failed)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def hurry(self, paths: Iterable[str], timeout: float) -> bool:
        """Move `paths` to the front and wait until each is stored; False on timeout or close."""
        with self._changed:
            wanted = [p for p in paths if p in self._waiting or p in self._taken]
            self._urgent.extendleft(reversed([p for p in wanted if p in self._waiting]))
            self._go.set()
            return self._changed.wait_for(
                lambda: self._closed or all(p in self._stored for p in wanted), timeout=timeout
            ) and all(p in self._stored for p in wanted)


class Builder:
    """One background refresh of an index at a time; its queue is published once the scan is done."""

    def __init__(self, index: Index):
        self.index = index
        self.queue: FileQueue | None = None
        self.queued = threading.Event()
        """Set once the queue is known, or the refresh ended without one."""
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self.thread is not None and self.thread.is_alive():
                return
            self.queue, self.error = None, None
            self.queued.clear()
            self.thread = threading.Thread(target=self._run, name="cadre-search-build", daemon=True)
            self.thread.start()

    def join(self, tick: Callable[[], None] | None = None) -> None:
        """Wait for the build to end, calling `tick` every 0.2 s and at the end."""
        while self.thread is not None and self.thread.is_alive():
            self.thread.join(0.2)
            if tick:
                tick()

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def _publish(self, queue: FileQueue) -> None:
        queue.hold(HOLD_S)  # the query that started the build is scanning for the files it needs
        self.queue = queue
        self.queued.set()

    def _run(self) -> None:
        try:
            self.index.refresh(queued=self._publish)
        except BaseException as exc:  # the next query refreshes in the foreground and reports it
            self.error = exc
        finally:
            self.queued.set()


def scan_rank(root: str, entries: list[FileEntry], plan: QueryPlan, scope: str = "") -> list[tuple[float, FileEntry]]:
    """Files scored by the query's terms in their raw text, best first; files matching nothing are left out."""
    terms = sorted(plan.weights, key=lambda t: (-plan.weights[t], -len(t)))[:SCAN_TERMS]
    needles = [t.encode() for t in terms if len(t) >= 2]
    if not needles:
        return []
    definitions = [(f"def {n}".encode(), f"class {n}".encode(), f"function {n}".encode(), f"func {n}".encode())
                   for n in sorted(plan.identifiers | plan.trace_functions)[:8]]  # fmt: skip
    stems = {s.lower() for s in plan.file_stems}
    prefix = f"{scope.rstrip('/')}/" if scope else ""
    rows: list[tuple[FileEntry, list[int], int, float]] = []
    df = [0] * len(needles)
    for entry in entries:
        if scope and not (entry.path == scope or entry.path.startswith(prefix)):
            continue
        try:
            with open(os.path.join(root, entry.path), "rb") as file:
                data = file.read().lower()
        except OSError:
            continue
        counts = [data.count(n) for n in needles]
        if not any(counts):
            continue
        for i, c in enumerate(counts):
            df[i] += c > 0
        bonus = sum(1.0 for forms in definitions if any(f in data for f in forms))
        name = entry.path.lower().rsplit("/", 1)[-1].rsplit(".", 1)[0]
        bonus += 2.0 * (name in stems) + sum(0.5 for n in needles if n.decode() in entry.path.lower())
        rows.append((entry, counts, len(data), bonus))
    if not rows:
        return []
    n_docs = len(entries)
    average = sum(r[2] for r in rows) / len(rows)
    idf = [math.log(1 + (n_docs - d + 0.5) / (d + 0.5)) for d in df]
    weights = [plan.weights.get(n.decode(), 1) for n in needles]
    scored = []
    for entry, counts, length, bonus in rows:
        norm = K1 * (1 - B + B * length / average)
        score = sum(w * i * c * (K1 + 1) / (c + norm) for w, i, c in zip(weights, idf, counts, strict=True) if c)
        scored.append((score + bonus * max(idf), entry))
    scored.sort(key=lambda s: (-s[0], s[1].path))
    return scored


def pick(scored: list[tuple[float, FileEntry]], entries: list[FileEntry]) -> list[str]:
    """The best-scored files (within EARLY_FILES and about EARLY_BYTES), then a fixed sample of the others."""
    chosen: list[str] = []
    size = 0
    for _, entry in scored[:EARLY_FILES]:
        if chosen and size + entry.size > EARLY_BYTES:
            break
        chosen.append(entry.path)
        size += entry.size
    import hashlib

    taken = set(chosen)
    others = sorted((e for e in entries if e.path not in taken), key=lambda e: hashlib.sha256(e.path.encode()).digest())
    size = 0
    for entry in others[:FILL_FILES]:
        if size + entry.size <= FILL_BYTES:
            chosen.append(entry.path)
            size += entry.size
    return chosen


def early_files(
    builder: Builder, plan: QueryPlan, scope: str, progress: Callable[[int, int], None] | None = None
) -> FileQueue | None:
    """Start the build if needed and hurry the files this query can hit.

    Returns the build's queue when an early answer makes sense (those files are now indexed),
    None when the caller should rank normally: the build failed, finished, or is small enough
    to wait for (it has been waited for then, reporting `progress` from this thread).
    """
    builder.start()
    builder.queued.wait()
    queue = builder.queue
    if queue is None or builder.error is not None:
        return None
    try:
        pending = queue.pending()
        small = sum(e.size for e in pending) < EARLY_MIN_BYTES
        wanted = [] if small else pick(scan_rank(str(builder.index.root), pending, plan, scope), pending)
    except BaseException:
        queue.release()
        raise
    if small:
        queue.release()
        builder.join(lambda: progress(queue.stored_count, len(queue)) if progress else None)
        return None
    queue.hurry(wanted, EARLY_WAIT_S)  # releases the hold with these files first
    return queue
