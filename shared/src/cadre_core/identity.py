"""Who is calling: the user name an HTTP request authenticated as, for the ledger, budgets and ownership.

The HTTP auth layer (`cadre up`) sets it per request with `acting_as`; stores read `current_user()`.
Over stdio, and for a tokenless loopback bind, there is no user: `current_user()` is None and every
thread and job is visible, as for one person.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_user: ContextVar[str | None] = ContextVar("cadre_user", default=None)


def current_user() -> str | None:
    """The authenticated user of the request being served, or None (stdio, tokenless loopback)."""
    return _user.get()


@contextmanager
def acting_as(user: str | None) -> Iterator[None]:
    """Run the enclosed code as `user` (None: no user); restored on exit."""
    token = _user.set(user)
    try:
        yield
    finally:
        _user.reset(token)
