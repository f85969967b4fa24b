"""`--watch`: keep the index fresh in the background as files change."""

from __future__ import annotations

import threading
from pathlib import Path

import structlog

log = structlog.get_logger("cadre.search.watch")


def start_watching(root: Path, stop: threading.Event | None = None) -> threading.Thread:
    """Refresh the root's index after each batch of file changes, in a daemon thread."""
    stop = stop or threading.Event()

    def run() -> None:
        import watchfiles

        from cadre_search.engine import engine_for

        engine = engine_for(root)
        engine.refresh()
        for changes in watchfiles.watch(root, stop_event=stop, debounce=300, raise_interrupt=False):
            try:
                stats = engine.refresh()
                log.info("index refreshed", changes=len(changes), refreshed=stats.refreshed, removed=stats.removed)
            except Exception as exc:  # keep watching; the next query refreshes anyway
                log.warning("watch refresh failed", error=str(exc))

    thread = threading.Thread(target=run, name="cadre-search-watch", daemon=True)
    thread.start()
    return thread
