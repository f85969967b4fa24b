"""`trace`, `cost` and `config show` at 80 and 120 columns: every id, model and detector whole, nothing cut."""

import json
from argparse import Namespace

import pytest
from rich.console import Console

from cadre_app.cli import cost, main, trace
from cadre_app.cli.config_show import render as render_config
from cadre_app.cli.config_show import rows as config_rows
from cadre_core import errors
from cadre_core.call import CallInfo
from cadre_core.ledger import MESSAGE_MAX_CHARS, Ledger, LedgerRow
from cadre_core.models.base import Message, ModelRequest, Usage
from cadre_core.models.test import TestModel
from cadre_core.router import Router
from tests.core.conftest import ledger_rows, make_config

THREAD = "t_9607d3c1a2b4e5f6"
MODELS = ("openai_compatible:meta-llama/llama-3.3-70b-instruct", "google:gemini-3.1-pro-preview", "openai:gpt-5.2")
DETECTORS = ("invalid_structured_output", "repetition_loop")
MESSAGE = "'confidence': expected one of high, medium, low, got 'very high'"
WIDTHS = pytest.mark.parametrize("width", [80, 120])


def attempt(model: str, outcome: str = "ok", **extra) -> dict:
    row = {"ts": "2026-12-06T02:49:45.123", "tool": "consult_oracle", "role": "oracle", "model": model,
           "attempt": 1, "outcome": outcome, "detector": None, "error_class": None, "message": None,
           "cost_usd": 0.0123, "latency_ms": 4200.0}  # fmt: skip
    return row | extra


def shown(width: int, draw) -> str:
    console = Console(record=True, width=width, file=open("/dev/null", "w"))  # noqa: SIM115
    draw(console)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= width
    assert "…" not in text  # rich's mark of a cut cell
    return text


@WIDTHS
def test_trace_shows_every_model_detector_and_message_whole(width):
    rows = [
        attempt(MODELS[0], "off_rails", detector=DETECTORS[0], message=MESSAGE),
        attempt(MODELS[1], "off_rails", detector=DETECTORS[1], message="the same line 40 times"),
        attempt(MODELS[2], "cancelled", error_class="process_died", cost_usd=0.05),
        attempt(MODELS[2]),
    ]
    text = shown(width, lambda c: trace.render(c, THREAD, rows))
    lines = text.splitlines()
    for whole in (f"Thread {THREAD}", *MODELS, *DETECTORS, "process_died", "off_rails", "cancelled"):
        assert any(whole in line for line in lines), whole
    assert MESSAGE in " ".join(line.strip() for line in lines)  # prose may wrap at spaces, never lose a word
    assert "4 attempts, $0.0869 in all" in text


def test_trace_is_a_table_when_it_fits():
    text = shown(120, lambda c: trace.render(c, THREAD, [attempt(MODELS[2]), attempt(MODELS[1])]))
    (row,) = [line for line in text.splitlines() if MODELS[1] in line]
    assert row.count("│") == 9 and "consult_oracle" in row and "4.2s" in row


@WIDTHS
def test_cost_shows_full_thread_ids_and_model_names(width):
    threads = [THREAD, "t_0123456789abcdef"]
    data = {
        "model": [
            {"key": m, "attempts": 3, "calls": 3, "refused": 0, "ok": 2, "off_rails": 1, "failures": 0, "cancelled": 0,
             "priced": 3, "unpriced": 0, "cost_usd": 0.5, "off_rails_cost_usd": 0.1, "threads": 1,
             "avg_thread_cost_usd": 0.5, "off_rails_pct": 20.0, "failure_rate": 0.0, "p50_latency_ms": 1200.0,
             "p95_latency_ms": 3400.0, "input_tokens": 1000, "output_tokens": 100}
            for m in MODELS
        ],
        "thread": [
            {"key": t, "attempts": 3, "ok": 2, "failed": 1, "input_tokens": 1_234_567, "output_tokens": 4567,
             "cost_usd": 0.5, "unpriced": 2, "avg_latency_ms": 3000}
            for t in threads
        ],
        "budgets": [
            {"cap": "roles.librarian.budget_per_day_usd", "limit_usd": 5.0, "spent_usd": 1.2, "remaining_usd": 3.8},
            {"cap": "per_thread_usd", "limit_usd": 1.0, "spent_usd": 0.5, "remaining_usd": 0.5,
             "threads": [{"thread_id": THREAD, "spent_usd": 0.5, "remaining_usd": 0.5}]},
        ],
        "settled_after_crash": {"calls": 3, "cost_usd": 0.15},
    }  # fmt: skip
    text = shown(width, lambda c: cost.render(c, data))
    lines = text.splitlines()
    for whole in (*threads, *MODELS, "roles.librarian.budget_per_day_usd", "0.5000 (+2 unpriced)", "1,234,567"):
        assert any(whole in line for line in lines), whole
    assert f"thread {THREAD}" in text
    assert "Settled after a crash: 3 calls, $0.1500" in text


@WIDTHS
def test_config_show_never_breaks_a_key(tmp_path, width):
    config = '[roles.oracle]\ncandidates = [{ model = "google:gemini-3.1-pro-preview" }]\n'
    (tmp_path / ".cadre.toml").write_text(config)

    table_rows = config_rows(Namespace(root=tmp_path))
    text = shown(width, lambda c: render_config(c, table_rows))
    lines = text.splitlines()
    for row in table_rows:
        assert any(row["key"] in line for line in lines), row["key"]
    assert str(tmp_path / ".cadre.toml") in "".join(line.strip() for line in lines)  # a long path may fold


def test_the_commands_fit_a_piped_80_column_terminal(capsys, tmp_path, monkeypatch):
    """Through `main`, as a user runs them: rich reads COLUMNS for a console that is not a terminal."""
    monkeypatch.setenv("COLUMNS", "80")
    ledger_path = tmp_path / "ledger.sqlite"
    (tmp_path / ".cadre.toml").write_text(f'[paths]\nledger = "{ledger_path}"\n')
    ledger = Ledger(ledger_path)
    provider, model = MODELS[0].split(":", 1)
    ledger.record(LedgerRow(role="oracle", provider=provider, model=model, outcome="off_rails", thread_id=THREAD,
                            detector=DETECTORS[0], message=MESSAGE, cost_usd=0.02))  # fmt: skip
    ledger.close()
    for argv in (["trace", THREAD], ["cost"], ["config", "show"]):
        assert main(["--root", str(tmp_path), *argv]) == 0
        out = capsys.readouterr().out
        assert max(len(line) for line in out.splitlines()) <= 80 and "…" not in out
        assert MODELS[0] in out or argv[0] == "config"
    assert main(["--root", str(tmp_path), "trace", THREAD, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["message"] == MESSAGE


@pytest.mark.anyio
async def test_the_validators_message_is_kept_redacted_and_capped(tmp_path, keys, ledger):
    secret = "ghp_" + "Ab3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI3kM5"  # a GitHub token, as detect-secrets knows it

    def picky(response):
        raise errors.OutputInvalidError(f"'answer' must not quote {secret} " + "x" * 2000)

    model = TestModel("{}", usage=Usage(input_tokens=10, output_tokens=5))
    router = Router(make_config(oracle=["openai:gpt-5.2"]), ledger, model_factory=lambda c, cfg: model)
    request = ModelRequest([Message.user("q")], output_schema={"type": "object"}, validate=picky)
    with pytest.raises(errors.AllCandidatesFailedError):
        await router.request("oracle", request, CallInfo(thread_id=THREAD))
    rows = ledger_rows(ledger)
    assert [r["detector"] for r in rows] == ["invalid_structured_output"] * 2  # the answer and its repair
    for row in rows:
        assert row["message"].startswith("'answer' must not quote ")
        assert secret not in row["message"] and "[REDACTED github-token]" in row["message"]
        assert len(row["message"]) == MESSAGE_MAX_CHARS


@WIDTHS
def test_a_hostile_models_text_cannot_drive_the_terminal(width):
    import io

    from pydantic import BaseModel, ConfigDict

    from cadre_core.errors import OutputInvalidError
    from cadre_core.models.base import ModelResponse
    from cadre_core.structured import validator

    class Answer(BaseModel):
        model_config = ConfigDict(extra="forbid")
        answer: str

    # a model's unknown key lands in the ledger's message as it is: here an OSC 52 clipboard write and a
    # screen clear (ECMA-48: ESC ] ... ESC \ and CSI 2 J), and an 8-bit CSI
    evil = "\x1b]52;c;ZWNobyBwd25lZA==\x1b\\\x1b[2J\x9b31m"
    with pytest.raises(OutputInvalidError) as caught:
        validator(Answer)(ModelResponse(text="", output={"answer": "a", evil: 1}, model="openai:gpt-5.2"))
    message = str(caught.value)
    assert evil in message
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=True, color_system=None)
    trace.render(console, THREAD, [attempt(MODELS[2], "off_rails", detector=DETECTORS[0], message=message),
                                   attempt(MODELS[0], tool=f"consult{evil}")])  # fmt: skip
    text = out.getvalue()
    assert "\x1b" not in text and "\x9b" not in text
    assert "\\x1b]52;c;ZWNobyBwd25lZA==" in "".join(text.split())  # shown, harmless, so the row can be read
