import threading
import time

import anyio
import pytest
from structlog.testing import capture_logs

from cadre_core.budget import Budget, BudgetExceededError, BudgetStoreError, Caps
from cadre_core.call import CallInfo
from cadre_core.models.base import Message, ModelRequest, Usage
from cadre_core.models.test import TestModel
from cadre_core.router import Router
from tests.core.conftest import ledger_rows, make_config

pytestmark = pytest.mark.anyio
# gpt-5.2: $1.75/M input, $14/M output. 1,000 in + 500 out really costs $0.00875.
USAGE = Usage(input_tokens=1000, output_tokens=500)
REAL = 1000 * 1.75e-6 + 500 * 14e-6


def routed(tmp_path, ledger, **budget):
    config = make_config(oracle=["openai:gpt-5.2"])
    for key, value in budget.items():
        setattr(config.budget, key, value)
    model = TestModel("ok", usage=USAGE, delay_s=0.01)
    return Router(config, ledger, model_factory=lambda c, cfg: model, budget=Budget(tmp_path / "budget.sqlite"))


async def test_a_hundred_concurrent_calls_never_end_above_the_cap(tmp_path, keys, ledger):
    cap = 0.5
    router = routed(tmp_path, ledger, per_day_usd=cap)
    request = ModelRequest([Message.user("q" * 3500)], max_output_tokens=500)  # worst case ~ $0.0088
    outcomes = []

    async def one() -> None:
        try:
            await router.request("oracle", request)
            outcomes.append("ok")
        except BudgetExceededError:
            outcomes.append("refused")

    async with anyio.create_task_group() as tg:
        for _ in range(100):
            tg.start_soon(one)
    rows = ledger_rows(ledger)
    spent = sum(r["cost_usd"] or 0 for r in rows)
    assert spent <= cap
    # the router holds a conservative worst case (under twice the real $0.00875) and settles to the real cost
    assert outcomes.count("ok") == sum(r["outcome"] == "ok" for r in rows) >= int(cap / (2 * REAL))
    assert outcomes.count("refused") == sum(r["outcome"] == "budget_refused" for r in rows) > 0


async def test_refusal_names_the_cap_and_what_is_left(tmp_path, keys, ledger):
    # one call's worst case (about $0.012) fits under $0.015; after it settles at $0.00875, another does not
    router = routed(tmp_path, ledger, per_thread_usd=0.015)
    request = ModelRequest([Message.user("q" * 3500)], max_output_tokens=500)
    await router.request("oracle", request, CallInfo(thread_id="t1"))
    with pytest.raises(BudgetExceededError) as info:
        await router.request("oracle", request, CallInfo(thread_id="t1"))
    message = str(info.value)
    assert "[budget] per_thread_usd = $0.0150 would be exceeded" in message
    assert f"${0.015 - REAL:.4f} left" in message
    await router.request("oracle", request, CallInfo(thread_id="t2"))  # another thread is unaffected


async def test_per_call_cap_uses_the_worst_case(tmp_path, keys, ledger):
    router = routed(tmp_path, ledger, per_call_usd=0.001)
    with pytest.raises(BudgetExceededError, match="per_call_usd"):
        await router.request("oracle", ModelRequest([Message.user("q")], max_output_tokens=32_000))
    assert [r["outcome"] for r in ledger_rows(ledger)] == ["budget_refused"]


def test_settling_replaces_the_reservation_with_the_real_cost(tmp_path):
    budget = Budget(tmp_path / "b.sqlite")
    caps = Caps(per_day=1.0)
    reservation = budget.reserve(caps, 0.9, role="oracle", thread_id=None)
    with pytest.raises(BudgetExceededError):
        budget.reserve(caps, 0.2, role="oracle", thread_id=None)
    budget.settle(reservation, 0.1)
    budget.reserve(caps, 0.2, role="oracle", thread_id=None)
    assert budget.remaining(caps, {})[0]["remaining_usd"] == pytest.approx(0.7)


def test_an_unusable_store_path_names_the_file_and_the_setting(tmp_path):
    (tmp_path / "afile").write_text("")
    with pytest.raises(BudgetStoreError, match=r"budget store at .*afile/sub/b\.sqlite cannot be opened") as info:
        Budget(tmp_path / "afile" / "sub" / "b.sqlite")
    assert "[paths] budget" in str(info.value)


def test_threads_with_their_own_store_objects_never_settle_above_the_cap(tmp_path):
    """Like separate processes: each thread opens the file itself; only SQLite's write lock keeps them apart."""
    path, cap, held, real = tmp_path / "shared.sqlite", 0.5, 0.0121, 0.00875
    caps = Caps(per_day=cap)
    Budget(path)  # the schema exists before the race starts
    start = threading.Barrier(50)
    outcomes: list[str] = []

    def one() -> None:
        budget = Budget(path)
        start.wait()
        for _ in range(5):
            try:
                reservation = budget.reserve(caps, held, role="oracle", thread_id=None)
            except BudgetExceededError:
                outcomes.append("refused")
                continue
            except Exception as exc:  # any other failure is what this test looks for
                outcomes.append(repr(exc))
                continue
            time.sleep(0.001)  # the call
            budget.settle(reservation, real)
            outcomes.append("ok")

    workers = [threading.Thread(target=one) for _ in range(50)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    rows = Budget(path).db.fetchone("SELECT COUNT(*), SUM(amount), MIN(settled) FROM spend")
    assert set(outcomes) == {"ok", "refused"}
    assert rows[0] == outcomes.count("ok") and rows[2] == 1  # every reservation settled
    assert rows[1] <= cap
    # reservations were held at 0.0121 but settled at 0.00875, so more than cap / held calls fit
    assert outcomes.count("ok") >= int(cap / held)


def test_a_call_that_costs_more_than_it_reserved_is_settled_at_its_cost_and_logged(tmp_path):
    budget = Budget(tmp_path / "b.sqlite")
    caps = Caps(per_day=0.5)
    reservation = budget.reserve(caps, 0.3, role="oracle", thread_id=None)
    with capture_logs() as logs:
        budget.settle(reservation, 0.6)  # the money is spent: the cap is over by 0.1
    (warning,) = [e for e in logs if e["log_level"] == "warning"]
    assert (warning["reserved_usd"], warning["cost_usd"]) == (0.3, 0.6)
    assert "cost more than it reserved" in warning["event"]
    (left,) = budget.remaining(caps, {})
    assert (left["spent_usd"], left["remaining_usd"]) == (0.6, 0.0)
    with pytest.raises(BudgetExceededError, match=r"\$0\.6000 spent or reserved, \$0\.0000 left"):
        budget.reserve(caps, 0.001, role="oracle", thread_id=None)  # every later call is refused
    with capture_logs() as logs:
        budget.settle(budget.reserve(Caps(), 0.2, role="oracle", thread_id=None), 0.1)  # under: no warning
    assert logs == []
