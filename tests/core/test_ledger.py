import sqlite3
import time

import pytest

from cadre_core.ledger import Ledger, LedgerRow, SQLLedgerStore
from cadre_core.models.base import Message, ModelRequest, Usage
from cadre_core.models.test import TestModel
from cadre_core.router import Router
from tests.core.conftest import make_config

pytestmark = pytest.mark.anyio


def row(**kw) -> LedgerRow:
    base = {"role": "oracle", "provider": "openai", "model": "gpt-5.2", "outcome": "ok"}
    return LedgerRow(**{**base, **kw})


def test_rows_and_summaries(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite")
    ledger.record(
        row(
            cost_usd=0.5,
            input_tokens=100,
            output_tokens=10,
            thread_id="a",
            ts="2026-11-20T10:00:00",
        )
    )
    ledger.record(row(cost_usd=0.25, thread_id="a", ts="2026-11-21T10:00:00"))
    ledger.record(row(role="search", provider="google", model="gemini", cost_usd=None, outcome="error"))
    assert ledger.flush()
    store = ledger.store
    by_role = {g["key"]: g for g in store.summary("role")}
    assert by_role["oracle"]["cost_usd"] == pytest.approx(0.75)
    assert by_role["oracle"]["attempts"] == 2
    assert by_role["search"]["failed"] == 1
    assert by_role["search"]["cost_usd"] is None
    by_model = {g["key"] for g in store.summary("model")}
    assert by_model == {"openai:gpt-5.2", "google:gemini"}
    assert {g["key"] for g in store.summary("day")} >= {"2026-11-20", "2026-11-21"}
    assert [g["cost_usd"] for g in store.summary("day", since_day="2026-11-21") if g["key"] == "2026-11-20"] == []
    assert len(store.rows(thread_id="a")) == 2


async def test_routed_call_writes_priced_row(tmp_path, keys):
    ledger = Ledger(tmp_path / "l.sqlite")
    model = TestModel(usage=Usage(input_tokens=2000, cache_read_tokens=1000, output_tokens=300, reasoning_tokens=100))
    router = Router(make_config(oracle=["openai:gpt-5.2"]), ledger, model_factory=lambda c, cfg: model)
    await router.request("oracle", ModelRequest([Message.user("q")]))
    ledger.flush()
    [r] = ledger.store.rows()
    assert (
        r["input_tokens"],
        r["cache_read_tokens"],
        r["output_tokens"],
        r["reasoning_tokens"],
    ) == (2000, 1000, 300, 100)
    # gpt-5.2: $1.75/M input, $0.175/M cached, $14/M output
    assert r["cost_usd"] == pytest.approx(1000 * 1.75e-6 + 1000 * 0.175e-6 + 300 * 14e-6)


def test_unknown_price_is_null_not_an_error():
    from cadre_core.pricing import price

    assert price(Usage(input_tokens=10, output_tokens=10), "openai", "gpt-does-not-exist") == (
        None,
        None,
    )


async def test_locked_ledger_never_blocks_a_call(tmp_path, keys):
    path = tmp_path / "l.sqlite"
    SQLLedgerStore(path).close()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        ledger = Ledger(path)
        router = Router(
            make_config(oracle=["openai:gpt-5.2"]),
            ledger,
            model_factory=lambda c, cfg: TestModel("ok"),
        )
        started = time.perf_counter()
        response = await router.request("oracle", ModelRequest([Message.user("q")]))
        assert time.perf_counter() - started < 0.5
        assert response.text == "ok"
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert ledger.flush(timeout=30)
    assert len(ledger.store.rows()) == 1  # written once the lock was released, nothing lost


def test_corrupt_ledger_is_moved_aside_and_replaced(tmp_path):
    path = tmp_path / "l.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    ledger = Ledger(path)
    ledger.record(row())
    assert ledger.flush()
    assert ledger.unwritten == []
    assert len(ledger.store.rows()) == 1
    kept = list(tmp_path.glob("l.sqlite.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_bytes().startswith(b"this is not")


def test_unopenable_ledger_keeps_rows_in_memory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    ledger = Ledger(blocker / "sub" / "l.sqlite")
    ledger.record(row())
    assert ledger.flush()
    assert ledger.store is None
    assert len(ledger.unwritten) == 1


def test_read_only_store_keeps_rows_in_memory(tmp_path):
    class ReadOnly(SQLLedgerStore):
        def append(self, rows):
            raise sqlite3.OperationalError("attempt to write a readonly database")

    ledger = Ledger(None, store=ReadOnly(tmp_path / "l.sqlite"))
    ledger.record(row())
    ledger.record(row())
    assert ledger.flush()
    assert len(ledger.unwritten) == 2


def test_two_processes_share_one_ledger(tmp_path):
    a, b = Ledger(tmp_path / "l.sqlite"), Ledger(tmp_path / "l.sqlite")
    for i in range(50):
        (a if i % 2 else b).record(row(attempt=i))
    assert a.flush(timeout=60) and b.flush(timeout=60)
    assert len(a.store.rows()) == 50
    assert a.unwritten == b.unwritten == []


def test_close_writes_pending_rows_and_stops_the_worker(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite")
    ledger.record(row())
    ledger.close()
    assert not ledger._worker.is_alive()
    assert len(SQLLedgerStore(tmp_path / "l.sqlite").rows()) == 1


def test_local_models_are_not_billed_at_cloud_prices():
    from cadre_core.pricing import catalog_context_window, price

    usage = Usage(input_tokens=100_000, output_tokens=100_000)
    assert price(usage, "openai_compatible", "deepseek-r1:14b") == (None, None)
    assert catalog_context_window("openai_compatible", "gpt-5.2") is None
    cost, _ = price(usage, "openai_compatible", "anthropic/claude-sonnet-4-5")
    assert cost == pytest.approx(0.3 + 1.5)  # OpenRouter-style names are priced as the vendor's model


@pytest.mark.slow
def test_concurrent_first_opens_of_a_new_database_all_succeed(tmp_path):
    """Switching a new file to WAL can fail at once with "database is locked" while another opener holds
    the lock; every opener must wait its turn instead (before the fix ~7% of such races failed)."""
    import threading

    errors = []

    def open_it(path):
        try:
            SQLLedgerStore(path).close()
        except Exception as exc:
            errors.append(exc)

    for i in range(60):
        threads = [threading.Thread(target=open_it, args=(tmp_path / f"{i}.sqlite",)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
