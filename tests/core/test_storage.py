"""The stores on both storage backends (the `storage` fixture: SQLite files, then a fresh PostgreSQL schema
when CADRE_TEST_PG_URL is set): same assertions, same fixtures."""

from __future__ import annotations

import json
import re
import secrets
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest
from structlog.testing import capture_logs

from cadre_core import ledger as ledger_module
from cadre_core import owner
from cadre_core.budget import MIGRATIONS as BUDGET_MIGRATIONS
from cadre_core.budget import Budget, BudgetExceededError, Caps, Held
from cadre_core.identity import acting_as
from cadre_core.ledger import MIGRATIONS as LEDGER_MIGRATIONS
from cadre_core.ledger import Ledger, LedgerRow, SQLLedgerStore
from cadre_core.storage import StorageError, is_url, open_database, redact_url, storage_url
from cadre_core.testing.storage import PG_URL, SKIP_REASON
from cadre_core.threads import MIGRATIONS as THREAD_MIGRATIONS
from cadre_core.threads import ThreadStore, UnknownThreadError

STORES = {"ledger": LEDGER_MIGRATIONS, "budget": BUDGET_MIGRATIONS, "threads": THREAD_MIGRATIONS}


def row(user: str | None, cost: float, **kw) -> LedgerRow:
    return LedgerRow(role="oracle", provider="openai", model="gpt-5.2", outcome="ok", cost_usd=cost, user=user, **kw)


def test_the_ledger_sums_by_user_and_returns_the_user(storage):
    store = SQLLedgerStore(storage.target("ledger"))
    store.append([row("alice", 0.25), row("alice", 0.5), row("bob", 0.125), row(None, 1.0)])
    by_user = {g["key"]: (g["attempts"], g["cost_usd"], g["input_tokens"]) for g in store.summary("user")}
    assert by_user == {None: (1, 1.0, 0), "alice": (2, 0.75, 0), "bob": (1, 0.125, 0)}
    assert [r["user"] for r in store.rows()] == ["alice", "alice", "bob", None]
    assert store.settled_after_crash() == {"calls": 0, "cost_usd": 0.0}
    store.close()


def test_a_ledger_row_takes_the_user_the_request_acts_as(storage):
    ledger = Ledger(None, url=storage.url) if storage.url else Ledger(storage.target("ledger"))
    with acting_as("alice"):
        ledger.record(row_for_now := LedgerRow(role="oracle", provider="openai", model="m", outcome="ok"))
    ledger.record(LedgerRow(role="oracle", provider="openai", model="m", outcome="ok"))
    assert row_for_now.user == "alice"
    assert ledger.flush()
    assert [r["user"] for r in ledger.store.rows()] == ["alice", None]
    ledger.close()


def test_threads_are_visible_only_to_their_user(storage):
    store = ThreadStore(storage.target("threads"))
    with acting_as("alice"):
        mine = store.create("oracle")
        store.append(mine, [], model=None)
    with acting_as("bob"):
        assert not store.exists(mine)
        with pytest.raises(UnknownThreadError, match="unknown thread_id"):
            store.messages(mine)
        with pytest.raises(UnknownThreadError):
            store.append(mine, [])
    from cadre_core.models.base import Message

    with acting_as("alice"):
        store.append(mine, [Message.user("q"), Message.assistant("a")])
        assert [m.text for m in store.messages(mine)] == ["q", "a"]
    assert store.exists(mine)  # no user: one person, who sees every thread
    store.close()


def test_budget_reserves_settles_and_reports_on_each_backend(storage):
    budget = Budget(storage.target("budget"))
    caps = Caps(per_day=1.0, user_per_day=0.5)
    with acting_as("alice"):
        held = budget.reserve(caps, 0.375, role="oracle", thread_id="t1")
        with pytest.raises(BudgetExceededError, match=r"per_user_per_day_usd = \$0.5000 would be exceeded"):
            budget.reserve(caps, 0.25, role="oracle", thread_id="t1")
        budget.settle(held, 0.125)
        budget.reserve(caps, 0.25, role="oracle", thread_id="t1")
    with acting_as("bob"):
        budget.reserve(caps, 0.5, role="oracle", thread_id=None)  # alice's spend is not bob's
        with pytest.raises(BudgetExceededError, match=r"\[budget\] per_day_usd"):
            budget.reserve(caps, 0.25, role="oracle", thread_id=None)  # but the day's total holds for all
    left = {r["cap"]: r for r in budget.remaining(caps, {})}
    assert left["per_day_usd"]["spent_usd"] == pytest.approx(0.875)
    assert left["per_user_per_day_usd"]["users"] == [
        {"user": "bob", "spent_usd": 0.5, "remaining_usd": 0.0},
        {"user": "alice", "spent_usd": 0.375, "remaining_usd": 0.125},
    ]
    budget.close()


def test_another_hosts_reservation_is_settled_once_its_heartbeat_is_silent(storage):
    budget = Budget(storage.target("budget"))
    kept = budget.reserve(Caps(per_day=1.0), 0.5, role="oracle", thread_id=None, held=Held(input_usd=0.125))
    gone = budget.reserve(Caps(per_day=1.0), 0.5, role="oracle", thread_id=None, held=Held(input_usd=0.125))
    # another machine: its pid cannot be checked, so only its heartbeat says whether it still runs
    elsewhere = "replica-b:4242:boot:1"
    assert not owner.on_this_host(elsewhere) and owner.on_this_host(owner.process_owner())
    budget.db.execute("UPDATE spend SET owner = ?, heartbeat = ? WHERE id = ?", (elsewhere, time.time(), kept))
    budget.db.execute("UPDATE spend SET owner = ?, heartbeat = ? WHERE id = ?", (elsewhere, time.time() - 600, gone))
    (settled,) = budget.reclaim()
    assert (settled["id"], settled["why"], settled["amount"]) == (gone, "process_died", 0.125)
    assert budget.remaining(Caps(per_day=1.0), {})[0]["spent_usd"] == pytest.approx(0.625)
    budget.close()


def test_migrations_run_once_and_record_their_version(storage):
    for name, migrations in STORES.items():
        for _ in range(2):
            db = open_database(storage.target(name), migrations)
            assert migrations.version(db) == migrations.latest
            rows = db.fetchall("SELECT component, version FROM schema_version WHERE component = ?", (name,))
            assert rows == [(name, migrations.latest)]
            db.close()


def test_a_ledger_an_older_version_wrote_keeps_its_rows(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with sqlite3.connect(path) as conn:  # the schema before messages, users and schema_version
        conn.execute(
            "CREATE TABLE attempts (id INTEGER PRIMARY KEY, ts TEXT NOT NULL, day TEXT NOT NULL,"
            " server TEXT NOT NULL DEFAULT '', tool TEXT NOT NULL DEFAULT '', thread_id TEXT, role TEXT NOT NULL,"
            " provider TEXT NOT NULL, model TEXT NOT NULL, attempt INTEGER NOT NULL, outcome TEXT NOT NULL,"
            " error_class TEXT, detector TEXT, input_tokens INTEGER NOT NULL, cache_read_tokens INTEGER NOT NULL,"
            " cache_write_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, reasoning_tokens INTEGER NOT NULL,"
            " cost_usd REAL, price_version TEXT, latency_ms REAL NOT NULL)"
        )
        conn.execute(
            "INSERT INTO attempts (ts, day, role, provider, model, attempt, outcome, input_tokens, cache_read_tokens,"
            " cache_write_tokens, output_tokens, reasoning_tokens, cost_usd, latency_ms) VALUES"
            " ('2026-01-01T00:00:00', '2026-01-01', 'oracle', 'openai', 'gpt-5.2', 1, 'ok', 10, 0, 0, 5, 0, 0.5, 12)"
        )
    store = SQLLedgerStore(path)
    store.append([row("alice", 0.25, message="why")])
    assert [(r["cost_usd"], r["user"], r["message"]) for r in store.rows()] == [
        (0.5, None, None),
        (0.25, "alice", "why"),
    ]
    assert LEDGER_MIGRATIONS.version(store.db) == LEDGER_MIGRATIONS.latest


OPEN_ALL = textwrap.dedent(
    """
    import sys, time
    from cadre_core.budget import Budget
    from cadre_core.ledger import SQLLedgerStore
    from cadre_core.threads import ThreadStore
    from cadre_librarian.github_cache import ResponseCache
    target = lambda name: sys.argv[1] if sys.argv[1].startswith("postgresql") else f"{sys.argv[1]}/{name}.sqlite"
    while time.time() < float(sys.argv[2]):  # start together
        time.sleep(0.001)
    SQLLedgerStore(target("ledger")).close()
    Budget(target("budget")).close()
    ThreadStore(target("threads")).close()
    cache = ResponseCache(target("http"))
    cache.put("k", "https://api.github.com/x", "json", 200, {}, b"body")
    assert cache.get("k").body == b"body"
    print("opened")
    """
)


@pytest.mark.slow
def test_two_processes_opening_a_fresh_database_at_once_both_succeed(storage):
    where = storage.url or str(storage.root)
    start = str(time.time() + 4)
    children = [
        subprocess.Popen([sys.executable, "-c", OPEN_ALL, where, start], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [child.communicate(timeout=60) for child in children]
    assert [(child.returncode, out.decode().strip()) for child, (out, _) in zip(children, outputs, strict=True)] == [
        (0, "opened"),
        (0, "opened"),
    ], [err.decode()[-2000:] for _, err in outputs]
    db = open_database(storage.target("ledger"), LEDGER_MIGRATIONS)
    versions = dict(db.fetchall("SELECT component, version FROM schema_version"))
    db.close()
    expected = {"ledger": LEDGER_MIGRATIONS.latest}
    if storage.url:  # one database holds every store
        expected |= {"budget": BUDGET_MIGRATIONS.latest, "threads": THREAD_MIGRATIONS.latest, "github_cache": 1}
    assert versions == expected


RESERVE_MANY = textwrap.dedent(
    """
    import sys, threading, time
    from cadre_core.budget import Budget, BudgetExceededError, Caps
    budgets = [Budget(sys.argv[1]) for _ in range(100)]  # one store object per call: nothing shared in-process
    granted = []
    gate = threading.Barrier(100)

    def one(budget):
        gate.wait()
        try:
            granted.append(budget.reserve(Caps(per_day=1.0), 0.0625, role="oracle", thread_id=None))
        except BudgetExceededError:
            pass

    while time.time() < float(sys.argv[2]):  # both processes start together
        time.sleep(0.001)
    workers = [threading.Thread(target=one, args=(budget,)) for budget in budgets]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print(len(granted))
    """
)


@pytest.mark.slow
def test_two_processes_of_a_hundred_concurrent_reservations_never_exceed_the_cap(storage):
    target = str(storage.target("budget"))
    start = str(time.time() + 4)  # after both have imported and opened the store, on a busy machine too
    children = [
        subprocess.Popen([sys.executable, "-c", RESERVE_MANY, target, start], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    granted = [int(child.communicate(timeout=90)[0].split()[-1]) for child in children]
    budget = Budget(target)
    spent = budget.remaining(Caps(per_day=1.0), {})[0]["spent_usd"]
    budget.close()
    # $1 / $0.0625 = 16 reservations fit, exactly (binary fractions sum without rounding)
    assert sum(granted) == 16 and spent == 1.0


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SECRET = "hunter2-do-not-log"


def test_the_password_never_appears_in_errors_or_logs(caplog, monkeypatch):
    url = f"postgresql://cadre:{SECRET}@127.0.0.1:{closed_port()}/cadre?connect_timeout=2"
    assert redact_url(url) == f"postgresql://cadre:***@127.0.0.1:{url.split(':')[3]}"
    assert SECRET not in redact_url(f"postgresql://h/db?user=u&password={SECRET}")
    caplog.set_level("DEBUG")  # psycopg and its pool log through the standard library
    warned: list[tuple[str, dict]] = []  # what the ledger logs (its structlog logger may be cached elsewhere)
    monkeypatch.setattr(ledger_module.log, "warning", lambda event, **kw: warned.append((event, kw)))
    with capture_logs() as logs:
        with pytest.raises(StorageError) as info:
            open_database(url, LEDGER_MIGRATIONS)
        ledger = Ledger(None, url=url)
        ledger.record(row("alice", 0.1))
        assert ledger.flush()
        ledger.close()
    logs.extend(dict(kw, event=event) for event, kw in warned)
    message = str(info.value)
    assert "cannot connect to PostgreSQL at postgresql://cadre:***@127.0.0.1:" in message and "refused" in message
    assert SECRET not in message and SECRET not in json.dumps(logs, default=str) and SECRET not in caplog.text
    assert ledger.unwritten and "***" in json.dumps(logs, default=str)  # kept in memory, the warning masked
    monkeypatch.setenv("CADRE_STORAGE_URL", f"mysql://root:{SECRET}@db/cadre")
    with pytest.raises(StorageError, match="is not a PostgreSQL URL") as bad:
        storage_url()
    assert SECRET not in str(bad.value)


@pytest.mark.skipif(not PG_URL, reason=SKIP_REASON)
def test_a_wrong_password_is_refused_without_echoing_it():
    assert PG_URL is not None
    wrong = re.sub(r"://([^:@/]+)(:[^@]*)?@", rf"://\1:{SECRET}@", PG_URL)
    assert SECRET in wrong and is_url(wrong)
    with pytest.raises(StorageError) as info:
        open_database(wrong, LEDGER_MIGRATIONS)
    assert "password authentication failed" in str(info.value) and SECRET not in str(info.value)


@pytest.mark.skipif(not PG_URL, reason=SKIP_REASON)
def test_a_pooled_connection_the_server_dropped_is_replaced_before_use(monkeypatch):
    import psycopg

    from cadre_core.storage import postgres
    from cadre_core.testing.storage import drop_schema, fresh_schema

    assert PG_URL is not None
    schema, url = fresh_schema(PG_URL)
    try:
        db = open_database(url, LEDGER_MIGRATIONS)
        (pid,) = db.fetchone("SELECT pg_backend_pid()") or (None,)
        with psycopg.connect(PG_URL, autocommit=True) as admin:  # as a server restart would
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        monkeypatch.setattr(postgres, "IDLE_CHECK_S", 0.0)  # the connection counts as idle: pinged, found dead
        assert db.fetchone("SELECT pg_backend_pid() <> ?", (pid,)) == (True,)
        db.close()
    finally:
        drop_schema(PG_URL, schema, url)


@pytest.mark.skipif(not PG_URL, reason=SKIP_REASON)
def test_a_sql_ascii_database_still_reads_back_text():
    # initdb without a UTF-8 locale (e.g. under `env -i`) makes SQL_ASCII databases, for which psycopg 3
    # returns bytes unless the connection asks for a client encoding ("Strings adaptation" in its docs)
    import psycopg

    assert PG_URL is not None
    name = "cadre_ascii_" + secrets.token_hex(4)
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} ENCODING 'SQL_ASCII' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'")
    url = re.sub(r"/[^/?]*(\?|$)", rf"/{name}\1", PG_URL.split("://", 1)[1], count=1)
    url = PG_URL.split("://", 1)[0] + "://" + url
    try:
        store = SQLLedgerStore(url)
        store.append([row("alice", 0.25)])
        assert [r["user"] for r in store.rows()] == ["alice"]
        store.close()
    finally:
        from cadre_core.storage.postgres import close_pool

        close_pool(url)
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
