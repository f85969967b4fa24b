"""One lock per key (a clone, a URL), created on first use and dropped when nobody holds or waits for it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio


class KeyedLocks:
    def __init__(self) -> None:
        self._locks: dict[str, tuple[anyio.Lock, int]] = {}

    def __bool__(self) -> bool:
        return bool(self._locks)

    def busy(self) -> frozenset[str]:
        """Keys someone holds or waits for."""
        return frozenset(self._locks)

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (anyio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
