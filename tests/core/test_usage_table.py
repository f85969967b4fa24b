"""The per-model usage table (`cadre cost --by model`) against numbers worked out by hand over a fixture ledger."""

import json

import pytest

from cadre_app import usage
from cadre_app.cli import main
from cadre_core.ledger import Ledger, LedgerRow, SQLLedgerStore

GPT = {"role": "oracle", "tool": "consult_oracle", "provider": "openai", "model": "gpt-5.2"}
FLASH = {"role": "search", "tool": "search_codebase", "provider": "google", "model": "gemini-3-flash-preview"}
LLAMA = {"role": "search", "tool": "search_codebase", "provider": "ollama", "model": "llama3"}
CLAUDE = {"role": "review", "tool": "review_change", "provider": "anthropic", "model": "claude-sonnet-4-5"}


def ts(day: int, hour: int = 12) -> str:
    return f"2026-03-{day:02d}T{hour:02d}:00:00.000+00:00"


FIXTURE = [
    # openai:gpt-5.2
    LedgerRow(**GPT, outcome="ok", cost_usd=0.40, thread_id="t1", latency_ms=1000, ts=ts(1)),
    LedgerRow(**GPT, outcome="ok", cost_usd=0.20, thread_id="t1", latency_ms=3000, ts=ts(1)),
    LedgerRow(
        **GPT, outcome="off_rails", detector="repetition_loop", cost_usd=0.10, thread_id="t2", latency_ms=2000, ts=ts(2)
    ),
    LedgerRow(**GPT, outcome="error", error_class="ModelTimeoutError", thread_id="t2", latency_ms=500, ts=ts(2)),
    LedgerRow(**GPT, outcome="fallback", error_class="RateLimitError", thread_id="t3", latency_ms=40000, ts=ts(3)),
    LedgerRow(**GPT, outcome="ok", cost_usd=0.30, latency_ms=5000, ts=ts(3)),
    LedgerRow(**GPT, outcome="budget_refused", error_class="BudgetExceededError", thread_id="t4", ts=ts(3)),
    LedgerRow(**GPT, outcome="ok", cost_usd=None, thread_id="t1", latency_ms=4000, ts=ts(3)),
    # google:gemini-3-flash-preview
    LedgerRow(**FLASH, outcome="ok", cost_usd=0.01, latency_ms=200, ts=ts(1)),
    LedgerRow(**FLASH, outcome="ok", cost_usd=0.03, latency_ms=400, ts=ts(2)),
    LedgerRow(**FLASH, outcome="off_rails", detector="garbage", cost_usd=0.04, latency_ms=900, ts=ts(2)),
    LedgerRow(**FLASH, outcome="cancelled", error_class="Cancelled", latency_ms=100, ts=ts(2)),
    # anthropic:claude-sonnet-4-5: never answered; one call failed, one was cancelled by the caller
    LedgerRow(**CLAUDE, outcome="error", error_class="ModelAuthError", latency_ms=100, ts=ts(3)),
    LedgerRow(**CLAUDE, outcome="cancelled", error_class="Cancelled", latency_ms=50, ts=ts(3)),
    # ollama:llama3: twenty answers 100 ms .. 2000 ms, 0.001 USD each
    *(LedgerRow(**LLAMA, outcome="ok", cost_usd=0.001, latency_ms=100 * i, ts=ts(3)) for i in range(1, 21)),
]


@pytest.fixture
def ledger_root(tmp_path):
    path = tmp_path / "ledger.sqlite"
    (tmp_path / ".cadre.toml").write_text(f'[paths]\nledger = "{path}"\n')
    ledger = Ledger(path)
    for row in FIXTURE:
        ledger.record(row)
    assert ledger.flush()
    ledger.close()
    return tmp_path


def test_model_table_json_equals_the_hand_computation(capsys, ledger_root):
    assert main(["--root", str(ledger_root), "cost", "--by", "model", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)["model"]
    # highest spend first: 1.00, 0.08, 0.02, 0.00
    assert [g["key"] for g in table] == [
        "openai:gpt-5.2",
        "google:gemini-3-flash-preview",
        "ollama:llama3",
        "anthropic:claude-sonnet-4-5",
    ]
    gpt, flash, llama, claude = table

    # 8 rows, the budget refusal was never sent: 7 calls
    assert (gpt["attempts"], gpt["calls"], gpt["refused"]) == (8, 7, 1)
    assert gpt["cost_usd"] == pytest.approx(0.40 + 0.20 + 0.10 + 0.30)
    assert (gpt["priced"], gpt["unpriced"]) == (4, 1)
    assert gpt["off_rails_pct"] == pytest.approx(10.0)  # 0.10 of 1.00
    assert gpt["failures"] == 2 and gpt["failure_rate"] == pytest.approx(2 / 7, abs=1e-4)  # error + fallback
    # threads among calls: t1 (0.40 + 0.20 + unpriced), t2 (0.10 + error), t3 (fallback); t4 was refused
    assert gpt["threads"] == 3
    assert gpt["avg_thread_cost_usd"] == pytest.approx(0.70 / 3, abs=1e-6)
    # answered latencies 1000, 3000, 2000, 5000, 4000 -> sorted; rank ceil(.5*5)=3 and ceil(.95*5)=5
    assert (gpt["p50_latency_ms"], gpt["p95_latency_ms"]) == (3000, 5000)

    assert (flash["calls"], flash["failures"], flash["cancelled"]) == (4, 0, 1)
    assert flash["cost_usd"] == pytest.approx(0.08)
    assert flash["off_rails_pct"] == pytest.approx(50.0)  # 0.04 of 0.08
    assert flash["failure_rate"] == 0  # 0 failures / (4 calls - 1 cancelled)
    assert flash["threads"] == 0 and flash["avg_thread_cost_usd"] is None
    assert (flash["p50_latency_ms"], flash["p95_latency_ms"]) == (400, 900)  # ranks 2 and 3 of 200, 400, 900

    # 20 answers: p50 is the 10th value, p95 the 19th (not the maximum)
    assert (llama["calls"], llama["p50_latency_ms"], llama["p95_latency_ms"]) == (20, 1000, 1900)
    assert llama["cost_usd"] == pytest.approx(0.02) and llama["off_rails_pct"] == 0

    # failure rate leaves cancelled calls out: 1 error / (2 calls - 1 cancelled), not 1 / 2
    assert (claude["calls"], claude["failures"], claude["cancelled"]) == (2, 1, 1)
    assert claude["cost_usd"] == 0 and claude["failure_rate"] == 1
    assert claude["off_rails_pct"] is None and claude["p50_latency_ms"] is None


def test_model_table_prints_the_same_numbers(capsys, ledger_root, monkeypatch):
    monkeypatch.setenv("COLUMNS", "220")
    assert main(["--root", str(ledger_root), "cost", "--by", "model"]) == 0
    out = capsys.readouterr().out
    lines = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]] for line in out.splitlines()
             if line.count("│") > 2}  # fmt: skip
    assert lines["openai:gpt-5.2"] == ["7", "1.0000 (+1 unpriced)", "0.2333", "10.0%", "3.0s", "5.0s", "28.6%"]
    assert lines["google:gemini-3-flash-preview"] == ["4", "0.0800", "-", "50.0%", "0.4s", "0.9s", "0.0%"]
    assert lines["ollama:llama3"] == ["20", "0.0200", "-", "0.0%", "1.0s", "1.9s", "0.0%"]
    assert lines["anthropic:claude-sonnet-4-5"] == ["2", "0.0000", "-", "-", "-", "-", "100.0%"]
    assert "Spend by model" in out


def test_tool_grouping_and_the_default_tables(capsys, ledger_root):
    assert main(["--root", str(ledger_root), "cost", "--by", "tool", "--json"]) == 0
    tools = {g["key"]: g for g in json.loads(capsys.readouterr().out)["tool"]}
    assert set(tools) == {"consult_oracle", "search_codebase", "review_change"}
    search = tools["search_codebase"]  # flash + llama
    assert search["calls"] == 24 and search["cost_usd"] == pytest.approx(0.10)
    assert search["off_rails_pct"] == pytest.approx(40.0)  # 0.04 of 0.10
    # answered: 200, 400, 900 and 100..2000 -> 23 values; rank 12 is 900, rank ceil(21.85)=22 is 1900
    assert (search["p50_latency_ms"], search["p95_latency_ms"]) == (900, 1900)

    assert main(["--root", str(ledger_root), "cost", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"role", "model", "day", "thread", "budgets", "settled_after_crash"}
    assert {g["key"]: g["attempts"] for g in data["day"]} == {"2026-03-01": 3, "2026-03-02": 5, "2026-03-03": 26}


def test_a_model_whose_calls_were_all_cancelled_has_no_failure_rate():
    row = {"provider": "x", "model": "m", "role": "r", "tool": "", "outcome": "cancelled", "cost_usd": None,
           "thread_id": None, "latency_ms": 10.0, "input_tokens": 0, "output_tokens": 0,
           "day": "2026-03-01"}  # fmt: skip
    (stats,) = usage.stats([row, row], "model")
    assert (stats.calls, stats.cancelled, stats.failure_rate) == (2, 2, None)
    assert stats.cells()[-1] == "-"


def test_unpriced_only_model_says_so(tmp_path):
    rows = [
        {"provider": "x", "model": "m", "role": "r", "tool": "", "outcome": "ok", "cost_usd": None,
         "thread_id": None, "latency_ms": 10.0, "input_tokens": 1, "output_tokens": 2, "day": "2026-03-01"},
    ] * 2  # fmt: skip
    (stats,) = usage.stats(rows, "model")
    assert stats.cells()[1] == "unpriced (2)"
    assert stats.off_rails_pct is None and stats.calls == 2 and stats.cost_usd == 0
    assert usage.stats(rows, "tool")[0].key == "-"


def test_rows_of_a_period_and_role(ledger_root):
    store = SQLLedgerStore(ledger_root / "ledger.sqlite")
    try:
        recent = usage.read_rows(store, since_day="2026-03-02", role="oracle")
        assert len(recent.rows) == 6 and not recent.truncated  # gpt rows on 03-02 and 03-03
        assert usage.stats(recent.rows)[0].cost_usd == pytest.approx(0.40)  # 0.10 + 0.30
        cut = usage.read_rows(store, limit=10)
        assert cut.truncated and len(cut.rows) == 10
        assert not usage.read_rows(store, since_day="2026-03-03", limit=30).truncated  # 26 rows that day
    finally:
        store.close()


def test_days_counts_only_recent_rows(capsys, ledger_root):
    ledger = Ledger(ledger_root / "ledger.sqlite")
    ledger.record(LedgerRow(**GPT, outcome="ok", cost_usd=0.05, latency_ms=700))
    assert ledger.flush()
    ledger.close()
    assert main(["--root", str(ledger_root), "cost", "--by", "model", "--days", "1", "--json"]) == 0
    (only,) = json.loads(capsys.readouterr().out)["model"]
    assert (only["key"], only["calls"], only["cost_usd"], only["p95_latency_ms"]) == ("openai:gpt-5.2", 1, 0.05, 700)


@pytest.mark.parametrize(
    ("p", "expected"),
    [(5, 15), (30, 20), (40, 20), (50, 35), (95, 50), (100, 50)],
)
def test_nearest_rank_percentile(p, expected):
    assert usage.percentile([35, 20, 15, 50, 40], p) == expected


def test_percentile_of_nothing_is_none():
    assert usage.percentile([], 50) is None


def test_daily_spend_fills_missing_days():
    rows = [
        {"day": "2026-03-01", "role": "oracle", "cost_usd": 0.5},
        {"day": "2026-03-04", "role": "oracle", "cost_usd": 0.25},
        {"day": "2026-03-04", "role": "search", "cost_usd": None},
        {"day": "2026-03-03", "role": "search", "cost_usd": 0.1},
    ]
    days, series = usage.daily_spend(rows, "role")
    assert days == ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"]
    assert series == {"oracle": [0.5, 0.0, 0.0, 0.25], "search": [0.0, 0.0, 0.1, 0.0]}
    assert list(series) == ["oracle", "search"]
