"""Reservations left by a process that died are settled at their input cost, with a ledger row each."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cadre_core import owner
from cadre_core.budget import EXPIRY_GRACE_S, Budget, Caps, Held
from tests.core.conftest import ledger_rows

CAP = Caps(per_day=1.0)
HOLDER = textwrap.dedent(
    """
    import sys, time
    from cadre_core.budget import Budget, Caps, Held
    budget = Budget(sys.argv[1])
    for n in range(4):  # each could cost $0.20; $0.05 of that is its input
        held = Held("openai:gpt-5.2", "cadre-oracle", "consult_oracle", n + 1, input_usd=0.05, input_tokens=1000)
        budget.reserve(Caps(per_day=1.0), 0.2, role="oracle", thread_id=f"t_crash{n}", held=held)
    print("held", flush=True)
    time.sleep(120)
    """
)


@pytest.fixture
def holder(tmp_path):
    """A real child process holding four reservations ($0.80) in `budget.sqlite`, until it is killed."""
    path = tmp_path / "budget.sqlite"
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        yield path, child
    finally:
        child.kill()
        child.wait()


def spent_today(budget: Budget) -> float:
    return budget.remaining(CAP, {})[0]["spent_usd"]


def wait_until_exited(pid: int) -> None:
    """After SIGKILL: until the pid is a zombie (not reaped on purpose) or gone."""
    deadline = time.monotonic() + 10
    while owner.owner_alive(owner.process_owner(pid)) and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_live_process_keeps_its_reservations(holder, ledger):
    path, _ = holder
    budget = Budget(path, ledger=ledger)
    assert budget.reclaim() == []
    assert spent_today(budget) == pytest.approx(0.8)
    assert ledger_rows(ledger) == []


def test_kill_9_with_reservations_held_gives_the_cap_back_at_their_input_cost(holder, ledger):
    path, child = holder
    child.send_signal(signal.SIGKILL)
    wait_until_exited(child.pid)  # a zombie until reaped: it has exited all the same
    budget = Budget(path, ledger=ledger)  # the next open settles them
    assert spent_today(budget) == pytest.approx(4 * 0.05)  # was 0.80 held
    budget.reserve(CAP, 0.75, role="oracle", thread_id=None)  # the cap is back: 0.20 + 0.75 fits under 1.00
    rows = ledger_rows(ledger)
    assert [(r["outcome"], r["error_class"]) for r in rows] == [("cancelled", "process_died")] * 4
    assert {(r["provider"], r["model"], r["role"], r["tool"], r["server"]) for r in rows} == {
        ("openai", "gpt-5.2", "oracle", "consult_oracle", "cadre-oracle")
    }
    assert sorted(r["thread_id"] for r in rows) == [f"t_crash{n}" for n in range(4)]
    assert [r["cost_usd"] for r in rows] == pytest.approx([0.05] * 4)
    assert {r["input_tokens"] for r in rows} == {1000}
    assert Budget(path, ledger=ledger).reclaim() == []  # settled once, never again
    assert len(ledger_rows(ledger)) == 4


def test_a_reused_pid_is_not_the_owner():
    me = owner.process_owner()
    host, pid, boot, _start = me.rsplit(":", 3)
    assert owner.owner_alive(me)
    assert not owner.owner_alive(f"{host}:{pid}:{boot}:1")  # same pid, another start time
    if boot:
        assert not owner.owner_alive(f"{host}:{pid}:{'0' * 32}:{_start}")  # another boot


def test_an_expired_reservation_is_settled_even_if_its_owner_runs(tmp_path, ledger):
    budget = Budget(tmp_path / "b.sqlite", ledger=ledger)
    late = Held("openai:gpt-5.2", input_usd=0.01, timeout_s=-EXPIRY_GRACE_S - 1)
    budget.reserve(CAP, 0.3, role="oracle", thread_id=None, held=late)
    budget.reserve(CAP, 0.3, role="oracle", thread_id=None, held=Held("openai:gpt-5.2", input_usd=0.01))
    (settled,) = budget.reclaim()
    assert settled["why"] == "reservation_expired"
    assert spent_today(budget) == pytest.approx(0.31)
    assert [r["error_class"] for r in ledger_rows(ledger)] == ["reservation_expired"]


def test_a_store_from_an_older_version_gains_the_owner_columns(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE spend (id INTEGER PRIMARY KEY, day TEXT NOT NULL, month TEXT NOT NULL, role TEXT NOT NULL,"
            " thread_id TEXT, amount REAL NOT NULL, settled INTEGER NOT NULL DEFAULT 0)"
        )
        conn.execute("INSERT INTO spend (day, month, role, amount) VALUES ('2026-01-01', '2026-01', 'oracle', 0.5)")
    budget = Budget(path)
    assert budget.reclaim() == []  # no owner recorded: left as it was
    budget.reserve(Caps(), 0.1, role="oracle", thread_id=None, held=Held(input_usd=0.02))
    owners = budget.db.fetchall("SELECT owner FROM spend ORDER BY id")
    assert owners == [(None,), (owner.process_owner(),)]
    assert str(os.getpid()) in owners[1][0] and Path(path).exists()


def test_bogus_owners_are_settled_and_never_stop_the_store_opening(tmp_path, ledger):
    path = tmp_path / "b.sqlite"
    budget = Budget(path, ledger=ledger)
    budget.reserve(CAP, 0.1, role="oracle", thread_id=None, held=Held("openai:gpt-5.2", input_usd=0.01))
    host = owner.process_owner().split(":")[0]
    # os.kill raises OverflowError (not OSError) for a pid past a C long; a negative pid names a process group
    bogus = [f"{host}:{10**30}::", f"{host}:-1::", f"{host}:0::", "", "garbage", f"{host}:x::", f"{host}:\x00::"]
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO spend (day, month, role, amount, owner) VALUES (?, ?, 'oracle', 0.1, ?)",
            [(time.strftime("%Y-%m-%d", time.gmtime()), time.strftime("%Y-%m", time.gmtime()), o) for o in bogus],
        )
    reopened = Budget(path, ledger=ledger)  # settles them; the live reservation stays held
    assert spent_today(reopened) == pytest.approx(0.1 + 0.1 * len(bogus))
    assert [r["error_class"] for r in ledger_rows(ledger)] == ["process_died"] * len(bogus)
    assert reopened.reclaim() == []
