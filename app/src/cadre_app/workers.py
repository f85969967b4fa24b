"""`cadre up --workers N`: uvicorn's supervisor of N processes sharing one listening socket, reporting on stderr
each worker that dies and the one that replaces it.

The parent binds the socket once; each worker is a fresh interpreter (multiprocessing's spawn) that builds its
own app with the same checks. SIGINT or SIGTERM to the parent stops every worker (SIGTERM, so each drains its
in-flight calls for `--grace` seconds). A worker that fails before it starts serving stops them all, as
restarting it would fail the same way.
"""

from __future__ import annotations

import sys

from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess


class Workers(Multiprocess):
    """uvicorn's `Multiprocess`, saying which worker died and which replaced it."""

    def init_processes(self) -> None:
        super().init_processes()
        pids = ", ".join(str(p.pid) for p in self.processes)
        print(f"cadre up: workers started (pids {pids})", file=sys.stderr, flush=True)

    def keep_subprocess_alive(self) -> None:
        before = list(self.processes)
        super().keep_subprocess_alive()
        for old, new in zip(before, self.processes, strict=True):
            if new is not old:
                print(
                    f"cadre up: worker {old.pid} exited (status {old.exitcode}); started worker {new.pid}",
                    file=sys.stderr,
                    flush=True,
                )

    @property
    def failed(self) -> bool:
        """A worker failed before it served (the supervisor then stopped them all)."""
        return any(p.exitcode == STARTUP_FAILURE for p in self.processes)
