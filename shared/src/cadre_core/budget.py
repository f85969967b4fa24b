"""USD caps per call, thread, day, month and role: reserve the worst case first, settle to the real cost.

Reservations are rows written in one transaction that first locks every capped scope it checks (on
PostgreSQL an advisory lock per scope, such as today's total or a user's day; on SQLite the file's write
lock), so concurrent calls (threads, processes, or replicas sharing one PostgreSQL) cannot together
overshoot a cap with what they reserved.

What a cap guarantees: every reservation is checked against every cap before the call is sent, so the sum
of reservations (and of the real costs they settle to) stays at or under the cap as long as no call costs
more than it reserved. A call that does cost more (a tokenizer counting more than the estimate, a pricing
tier the reservation missed) is settled at its real cost, since that money is spent, and a warning is
logged; the total may then end above the cap, and every later call is refused until it is back under.

Crash safety: each reservation records its owner (`cadre_core.owner`: host, pid, boot, start time), an expiry
and a heartbeat its process renews every `HEARTBEAT_S` while it holds any. One whose owner is gone (a dead
pid on this host; on another host, where no pid can be checked, a heartbeat older than `SILENT_S`), or
whose expiry passed, is settled at the input part of its estimate (a call cut
off before its answer is billed for its input at most) when a store opens and every `RECLAIM_EVERY_S` on
`reserve`, and a ledger row (`outcome=cancelled`, `error_class=process_died` or `reservation_expired`)
says where that spend went.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import structlog

from cadre_core import owner
from cadre_core.call import CallInfo
from cadre_core.config import BudgetConfig, CadreConfig
from cadre_core.errors import CadreError, ModelTimeoutError
from cadre_core.identity import current_user
from cadre_core.models.base import Model, ModelRequest, ModelResponse, Usage
from cadre_core.models.refs import parse_model_ref
from cadre_core.pricing import price
from cadre_core.routing.wrapper import Tries, WrapperModel
from cadre_core.storage import StorageError, guarded, open_database, storage_url
from cadre_core.storage.migrations import AddColumns, Migrations

if TYPE_CHECKING:
    from cadre_core.ledger import Ledger

log = structlog.get_logger("cadre.budget")

MIGRATIONS = Migrations(
    "budget",
    (
        """
        CREATE TABLE IF NOT EXISTS spend (
            id {id}, day TEXT NOT NULL, month TEXT NOT NULL, role TEXT NOT NULL,
            thread_id TEXT, amount DOUBLE PRECISION NOT NULL, settled INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX IF NOT EXISTS spend_open ON spend(settled) WHERE settled = 0;
        CREATE INDEX IF NOT EXISTS spend_day ON spend(day);
        CREATE INDEX IF NOT EXISTS spend_month ON spend(month);
        CREATE INDEX IF NOT EXISTS spend_thread ON spend(thread_id)
        """,
        # added after the first release: a store written by an older version gains them
        AddColumns(
            "spend",
            {
                "created": "TEXT",
                "expires": "DOUBLE PRECISION",
                "owner": "TEXT",
                "input_usd": "DOUBLE PRECISION",
                "input_tokens": "INTEGER",
                "model": "TEXT",
                "server": "TEXT",
                "tool": "TEXT",
                "attempt": "INTEGER",
            },
        ),
        "ALTER TABLE spend ADD COLUMN user_name TEXT; ALTER TABLE spend ADD COLUMN heartbeat DOUBLE PRECISION; "
        "CREATE INDEX spend_user_day ON spend(user_name, day)",
    ),
    table="spend",
)
RECLAIM_EVERY_S = 60.0
"""How often `reserve` looks for reservations left by a process that died (one indexed query)."""
EXPIRY_GRACE_S = 300.0
"""A reservation expires this long after its call's time-out, even if its owner still runs."""
HEARTBEAT_S = 30.0
"""How often a process holding reservations renews their heartbeat."""
SILENT_S = 180.0
"""A reservation owned on another host whose heartbeat is older than this is taken for a dead replica's."""


@dataclass(frozen=True)
class Held:
    """What a reservation is for, kept so a crash can be settled and explained: the attempt
    (`model` as provider:model), the input part of the estimate, and how long the call may take."""

    model: str = ""
    server: str = ""
    tool: str = ""
    attempt: int = 1
    input_usd: float | None = None
    input_tokens: int = 0
    timeout_s: float = 3600.0


class BudgetExceededError(CadreError):
    """A call would go over a spending cap."""


class BudgetStoreError(CadreError):
    """The spend store cannot be opened, read or written."""


_guarded = guarded(BudgetStoreError)


@dataclass(frozen=True)
class Caps:
    per_call: float | None = None
    per_thread: float | None = None
    per_day: float | None = None
    per_month: float | None = None
    role_per_day: float | None = None
    user_per_day: float | None = None

    @classmethod
    def from_config(cls, budget: BudgetConfig, role_per_day: float | None) -> Caps:
        return cls(budget.per_call_usd, budget.per_thread_usd, budget.per_day_usd, budget.per_month_usd, role_per_day,
                   budget.per_user_per_day_usd)  # fmt: skip

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.per_call, self.per_thread, self.per_day, self.per_month,
                                           self.role_per_day, self.user_per_day))  # fmt: skip


class Budget:
    """Reservations and settled spend in a `cadre_core.storage` database (a SQLite file or PostgreSQL)."""

    def __init__(self, path: Path | str, *, ledger: Ledger | None = None):
        """Open (creating if needed) the store at `path`, a file or a `postgresql://` URL, and settle what
        crashed processes left held (see the module docstring), recording each in `ledger`; raise
        `BudgetStoreError` naming the store and the fix if that fails."""
        self.ledger = ledger
        try:
            self.db = open_database(path, MIGRATIONS)
        except StorageError as exc:
            raise BudgetStoreError(f"{exc} or set [paths] budget in cadre.toml to a writable file") from exc
        self.path = self.db.where
        self._owner = owner.process_owner()
        self._lock = threading.Lock()
        self._reclaimed_at = time.monotonic()
        self._heartbeat: threading.Thread | None = None
        self._held: dict[int, float] = {}
        self._closed = threading.Event()
        self.reclaim()

    def close(self) -> None:
        """Stop the heartbeat and close the store (reservations still held will expire)."""
        self._closed.set()
        if self._heartbeat is not None:
            self._heartbeat.join(5)
        self.db.close()

    def _beat(self) -> None:
        """Renew this process's open reservations every HEARTBEAT_S, so other replicas know it runs."""
        while not self._closed.wait(HEARTBEAT_S):
            try:
                self.db.execute(
                    "UPDATE spend SET heartbeat = ? WHERE settled = 0 AND owner = ?", (time.time(), self._owner)
                )
            except StorageError as exc:
                log.warning("cannot renew the budget heartbeat; retrying", error=str(exc))

    @_guarded
    def reserve(self, caps: Caps, amount: float, *, role: str, thread_id: str | None, held: Held | None = None) -> int:
        """Hold `amount` USD against every cap for this process until `held.timeout_s` and a grace pass, or raise
        `BudgetExceededError` naming the cap and what is left."""
        if time.monotonic() - self._reclaimed_at > RECLAIM_EVERY_S:
            self.reclaim()
        held = held or Held()
        now = datetime.now(UTC)
        day, month = now.strftime("%Y-%m-%d"), now.strftime("%Y-%m")
        if caps.per_call is not None and amount > caps.per_call:
            raise BudgetExceededError(
                f"this call could cost up to ${amount:.4f}, over [budget] per_call_usd = ${caps.per_call:.4f}; "
                "raise the cap, lower max_output_tokens, or send fewer files"
            )
        user = current_user()
        checks: list[tuple[str, float | None, str, list[Any]]] = [
            ("[budget] per_day_usd", caps.per_day, "day = ?", [day]),
            ("[budget] per_month_usd", caps.per_month, "month = ?", [month]),
            (f"[roles.{role}] budget_per_day_usd", caps.role_per_day, "day = ? AND role = ?", [day, role]),
        ]
        if thread_id:
            checks.append(("[budget] per_thread_usd", caps.per_thread, "thread_id = ?", [thread_id]))
        if user is not None:
            checks.append(
                ("[budget] per_user_per_day_usd", caps.user_per_day, "day = ? AND user_name = ?", [day, user])
            )
        checks = [check for check in checks if check[1] is not None]
        # one lock per capped scope (its name and values), so only reservations sharing a scope wait on each other
        locks = [f"cadre.budget:{where}:{args}" for _, _, where, args in checks]
        self._start_heartbeat()
        with self._lock, self.db.transaction(*locks) as tx:
            for name, cap, where, args in checks:
                assert cap is not None
                used = tx.fetchone(f"SELECT COALESCE(SUM(amount), 0) FROM spend WHERE {where}", args)  # noqa: S608
                spent = used[0] if used else 0.0
                if spent + amount > cap:
                    raise BudgetExceededError(
                        f"{name} = ${cap:.4f} would be exceeded: ${spent:.4f} spent or reserved, "
                        f"${max(0.0, cap - spent):.4f} left, and this call could cost up to ${amount:.4f}. "
                        "Raise the cap in cadre.toml or wait for it to reset"
                    )
            row = tx.fetchone(
                "INSERT INTO spend (day, month, role, thread_id, amount, created, expires, owner, input_usd, "
                "input_tokens, model, server, tool, attempt, user_name, heartbeat) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (day, month, role, thread_id, amount, now.isoformat(timespec="milliseconds"),
                 time.time() + held.timeout_s + EXPIRY_GRACE_S, self._owner, held.input_usd,
                 held.input_tokens, held.model, held.server, held.tool, held.attempt, user, time.time()),
            )  # fmt: skip
            assert row is not None  # RETURNING gives the new row's id
        self._held[int(row[0])] = amount
        return int(row[0])

    def _start_heartbeat(self) -> None:
        if self._heartbeat is None:
            with self._lock:
                if self._heartbeat is None:
                    self._heartbeat = threading.Thread(target=self._beat, name="cadre-budget-heartbeat", daemon=True)
                    self._heartbeat.start()

    @_guarded
    def settle(self, reservation: int, actual: float) -> None:
        """Replace a reservation by what the call really cost; log a warning when that is more than was held."""
        held = self._held.pop(reservation, None)  # what this object reserved: one statement, no read
        if held is None:
            row = self.db.fetchone("SELECT amount FROM spend WHERE id = ? AND settled = 0", (reservation,))
            held = row[0] if row is not None else None
        self.db.execute("UPDATE spend SET amount = ?, settled = 1 WHERE id = ?", (actual, reservation))
        if held is not None and actual > held + 1e-12:
            log.warning(
                "a call cost more than it reserved; caps may be exceeded by the difference",
                reserved_usd=round(held, 6),
                cost_usd=round(actual, 6),
                path=str(self.path),
            )

    @_guarded
    def reclaim(self) -> list[dict[str, Any]]:
        """Settle the reservations whose owner is gone or whose expiry passed at their input cost (the whole
        hold when that is unknown), record a ledger row for each, and return them. Finding none costs one
        indexed read and no write lock."""
        self._reclaimed_at = time.monotonic()
        rows = self.db.fetchdicts("SELECT * FROM spend WHERE settled = 0 AND owner IS NOT NULL")
        alive = functools.cache(owner.owner_alive)  # one look per process, however many calls it holds
        stale = [row for row in rows if _stale(row, alive)]
        if not stale:
            return []
        done = []
        with self.db.transaction() as tx:
            for row in stale:
                if row["input_usd"] is not None:
                    row["amount"] = min(row["amount"], row["input_usd"])
                updated = tx.execute(
                    "UPDATE spend SET amount = ?, settled = 1 WHERE id = ? AND settled = 0", (row["amount"], row["id"])
                )
                if updated:  # else another process settled it first
                    done.append(row)
        if done:
            log.warning(
                "settled reservations a stopped process left held, at their input cost",
                count=len(done),
                usd=round(sum(r["amount"] for r in done), 6),
                path=str(self.path),
            )
            self._record(done)
        return done

    def _record(self, reclaimed: list[dict[str, Any]]) -> None:
        if self.ledger is None:
            return
        from cadre_core.ledger import LedgerRow

        for row in reclaimed:
            provider, _, model = (row["model"] or "").partition(":")
            self.ledger.record(
                LedgerRow(
                    role=row["role"],
                    provider=provider,
                    model=model,
                    outcome="cancelled",
                    server=row["server"] or "",
                    tool=row["tool"] or "",
                    thread_id=row["thread_id"],
                    user=row["user_name"],
                    attempt=row["attempt"] or 1,
                    error_class=row["why"],
                    input_tokens=row["input_tokens"] or 0,
                    cost_usd=row["amount"],
                    ts=row["created"] or datetime.now(UTC).isoformat(timespec="milliseconds"),
                )
            )

    @_guarded
    def remaining(self, caps: Caps, roles: dict[str, float | None], *, threads: int = 5) -> list[dict[str, Any]]:
        """What is left of each configured cap: today, this month, per role today; the per-call cap as is
        (spent and remaining None); the per-thread cap with the `threads` busiest threads under `threads`
        (its own spent/remaining are the busiest thread's)."""
        now = datetime.now(UTC)
        day, month = now.strftime("%Y-%m-%d"), now.strftime("%Y-%m")
        rows: list[dict[str, Any]] = []
        if caps.per_call is not None:
            rows.append({"cap": "per_call_usd", "limit_usd": caps.per_call, "spent_usd": None, "remaining_usd": None})
        for name, cap, where, args in [
            ("per_day_usd", caps.per_day, "day = ?", [day]),
            ("per_month_usd", caps.per_month, "month = ?", [month]),
            *[(f"roles.{r}.budget_per_day_usd", c, "day = ? AND role = ?", [day, r]) for r, c in roles.items()],
        ]:
            if cap is None:
                continue
            spent = self.db.fetchone(f"SELECT COALESCE(SUM(amount), 0) FROM spend WHERE {where}", args)  # noqa: S608
            rows.append(_left(name, cap, spent[0] if spent else 0.0))
        for name, cap, key, column, where, args in [
            ("per_thread_usd", caps.per_thread, "threads", "thread_id", "", []),
            ("per_user_per_day_usd", caps.user_per_day, "users", "user_name", "AND day = ?", [day]),
        ]:
            if cap is None:
                continue
            busiest = self.db.fetchall(
                f"SELECT {column}, SUM(amount) AS used FROM spend WHERE {column} IS NOT NULL {where} "  # noqa: S608
                f"GROUP BY {column} ORDER BY used DESC, {column} LIMIT ?",
                (*args, threads),
            )
            label = "thread_id" if key == "threads" else "user"
            rows.append(
                _left(name, cap, busiest[0][1] if busiest else 0.0)
                | {key: [{label: t} | _left("", cap, used) for t, used in busiest]}
            )
        return rows


def _stale(row: dict[str, Any], alive: Callable[[str], bool]) -> bool:
    """Whether an unsettled reservation's owner is gone (on another host: silent for SILENT_S) or its expiry
    passed; sets `row["why"]`."""
    silent = (
        not owner.on_this_host(row["owner"])
        and row["heartbeat"] is not None
        and row["heartbeat"] < time.time() - SILENT_S
    )
    if silent or not alive(row["owner"]):
        row["why"] = "process_died"
    elif row["expires"] is not None and row["expires"] < time.time():
        row["why"] = "reservation_expired"
    return "why" in row


def _left(name: str, cap: float, used: float) -> dict[str, Any]:
    """A cap's row; `name` empty for a thread's row under the per-thread cap (only spent and remaining)."""
    left = {"spent_usd": round(used, 6), "remaining_usd": round(max(0.0, cap - used), 6)}
    return {"cap": name, "limit_usd": cap} | left if name else left


def default_budget_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("cadre")) / "budget.sqlite"


RESERVE_INPUT_FACTOR = 1.5
RESERVE_PRICE_FACTOR = 1.25
_unpriced_warned: set[str] = set()


class BudgetedModel(WrapperModel):
    """Each attempt reserves its worst-case cost against the caps first (refused with
    `BudgetExceededError` when it does not fit) and settles to its real cost after. An attempt cut off
    by a time-out or a cancellation keeps its reservation, since the provider may still bill it.

    Worst case: the input estimate x RESERVE_INPUT_FACTOR (the estimate counts characters, a tokenizer may
    count more) plus the full output limit, priced, x RESERVE_PRICE_FACTOR (cache-write premiums and
    long-context tiers). A model with no known price reserves nothing, and a warning says so. The input
    part and the attempt are kept with it, so a crash mid-call is settled at the input cost and explained."""

    def __init__(
        self,
        wrapped: Model,
        budget: Budget,
        caps: Caps,
        *,
        ref: str,
        role: str,
        call: CallInfo,
        tries: Tries,
        timeout_s: float,
    ):
        super().__init__(wrapped)
        self.budget, self.caps, self.ref, self.role = budget, caps, ref, role
        self.call, self.tries, self.timeout_s = call, tries, timeout_s

    async def request(self, request: ModelRequest) -> ModelResponse:
        reservation, amount = self._reserve(request)
        answered: ModelResponse | None = None
        billed_unknown = False
        try:
            answered = await self.wrapped.request(request)
            return answered
        except ModelTimeoutError as exc:
            answered, billed_unknown = exc.late_response, exc.late_response is None
            raise
        except anyio.get_cancelled_exc_class():
            billed_unknown = True
            raise
        finally:
            cost = price(answered.usage, *parse_model_ref(self.ref))[0] if answered is not None else None
            self.budget.settle(reservation, amount if billed_unknown else (cost or 0.0))

    def _reserve(self, request: ModelRequest) -> tuple[int, float]:
        provider, name = parse_model_ref(self.ref)
        worst_input = int(request.estimated_input_tokens() * RESERVE_INPUT_FACTOR) + 1
        priced = price(Usage(input_tokens=worst_input, output_tokens=request.output_limit), provider, name)[0]
        if priced is None and self.ref not in _unpriced_warned:
            _unpriced_warned.add(self.ref)
            log.warning("no price known; budget caps cannot limit this model", model=self.ref)
        amount = (priced or 0.0) * RESERVE_PRICE_FACTOR
        input_usd = (price(Usage(input_tokens=worst_input), provider, name)[0] or 0.0) * RESERVE_PRICE_FACTOR
        held = Held(self.ref, self.call.server, self.call.tool, self.tries.number, input_usd, worst_input,
                    self.timeout_s)  # fmt: skip
        return self.budget.reserve(self.caps, amount, role=self.role, thread_id=self.call.thread_id, held=held), amount


def open_budget(config: CadreConfig, ledger: Ledger | None = None) -> Budget | None:
    """The spend store when any cap is configured, else None (no caps, nothing to hold); what a crashed
    process left held is settled on open and recorded in `ledger` (by default the config's ledger)."""
    roles = [r.budget_per_day_usd for r in config.roles.values()]
    caps = [config.budget.per_call_usd, config.budget.per_thread_usd, config.budget.per_day_usd,
            config.budget.per_month_usd, config.budget.per_user_per_day_usd, *roles]  # fmt: skip
    if all(c is None for c in caps):
        return None
    if ledger is None:
        from cadre_core.ledger import Ledger

        ledger = Ledger(config.paths.ledger, url=storage_url(config))
    return Budget(storage_url(config) or config.paths.budget or default_budget_path(), ledger=ledger)
