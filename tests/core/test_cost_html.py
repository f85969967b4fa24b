"""`cadre cost --html FILE`: a self-contained, well-formed page with the two inline SVG charts."""

import re
from html.parser import HTMLParser

import pytest

from cadre_app.cli import main
from cadre_core.ledger import Ledger, LedgerRow

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
SVG_EMPTY = {"line", "rect", "circle", "path", "polyline"}  # may be written self-closing inside SVG
EVIL_ROLE = "<img src=x onerror=alert(1)>"
EVIL_MODEL = 'evil"<b>&amp;'


class Page(HTMLParser):
    """Checks nesting while collecting every element with its attributes, parent chain and text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[dict] = []
        self.elements: list[dict] = []
        self.doctype = None
        self.problems: list[str] = []

    def handle_decl(self, decl):
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        element = {"tag": tag, "attrs": dict(attrs), "parents": list(self.stack), "text": ""}
        self.elements.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag, attrs):
        if tag not in VOID | SVG_EMPTY:
            self.problems.append(f"self-closing <{tag}/>")
        self.elements.append({"tag": tag, "attrs": dict(attrs), "parents": list(self.stack), "text": ""})

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1]["tag"] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1]['tag'] if self.stack else 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data):
        for element in self.stack:
            element["text"] += data


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    assert not page.problems, page.problems
    assert not page.stack, [e["tag"] for e in page.stack]
    return page


def inside(page: Page, element_id: str, tag: str, cls: str) -> list[dict]:
    return [
        e
        for e in page.elements
        if e["tag"] == tag
        and e["attrs"].get("class") == cls
        and any(p["attrs"].get("id") == element_id for p in e["parents"])
    ]


@pytest.fixture
def report_root(tmp_path):
    path = tmp_path / "ledger.sqlite"
    (tmp_path / ".cadre.toml").write_text(f'[paths]\nledger = "{path}"\n')
    gpt = {"role": "oracle", "provider": "openai", "model": "gpt-5.2"}
    flash = {"role": "search", "provider": "google", "model": "gemini-3-flash-preview"}
    ledger = Ledger(path)
    for row in [
        LedgerRow(**gpt, outcome="ok", cost_usd=0.40, ts="2026-03-01T09:00:00.000+00:00"),
        LedgerRow(**gpt, outcome="off_rails", cost_usd=0.20, ts="2026-03-01T10:00:00.000+00:00"),
        LedgerRow(**gpt, outcome="ok", cost_usd=0.20, ts="2026-03-03T10:00:00.000+00:00"),
        LedgerRow(**gpt, outcome="error", ts="2026-03-03T11:00:00.000+00:00"),
        LedgerRow(**flash, outcome="ok", cost_usd=0.03, ts="2026-03-01T12:00:00.000+00:00"),
        LedgerRow(**flash, outcome="ok", cost_usd=0.01, ts="2026-03-02T12:00:00.000+00:00"),
        LedgerRow(
            role="review",
            provider="anthropic",
            model="claude-sonnet-4-5",
            outcome="error",
            ts="2026-03-02T13:00:00.000+00:00",
        ),
        LedgerRow(
            role=EVIL_ROLE,
            provider="x",
            model=EVIL_MODEL,
            outcome="off_rails",
            cost_usd=0.05,
            ts="2026-03-02T14:00:00.000+00:00",
        ),
    ]:
        ledger.record(row)
    assert ledger.flush()
    ledger.close()
    return tmp_path


def test_report_is_well_formed_self_contained_html(capsys, report_root):
    target = report_root / "report.html"
    assert main(["--root", str(report_root), "cost", "--html", str(target)]) == 0
    assert str(target) in capsys.readouterr().out
    text = target.read_text(encoding="utf-8")
    page = parse(text)

    assert page.doctype.lower() == "doctype html"
    assert [e["tag"] for e in page.elements[:3]] == ["html", "head", "meta"]
    assert {"title", "style", "body", "table"} <= {e["tag"] for e in page.elements}
    # nothing is fetched: no script, no link, no image, no url(), no http(s) anywhere
    assert not {"script", "link", "img", "iframe", "object", "embed"} & {e["tag"] for e in page.elements}
    assert not [e for e in page.elements if {"src", "href", "xlink:href"} & set(e["attrs"])]
    assert not re.search(r"https?:|url\(|@import", text)
    assert [e["attrs"]["id"] for e in page.elements if e["tag"] == "svg"] == ["spend-by-role", "off-rails-by-model"]


def test_spend_chart_has_one_series_per_role_with_each_days_spend(report_root):
    target = report_root / "report.html"
    assert main(["--root", str(report_root), "cost", "--html", str(target)]) == 0
    page = parse(target.read_text(encoding="utf-8"))
    series = inside(page, "spend-by-role", "g", "series")
    # highest total first: oracle 0.80, <img ...> 0.05, search 0.04, review 0
    assert [g["attrs"]["data-series"] for g in series] == ["oracle", EVIL_ROLE, "search", "review"]
    bars = {}
    for rect in (e for e in page.elements if e["tag"] == "rect"):
        owner = [p for p in rect["parents"] if p["attrs"].get("class") == "series"]
        if owner:
            key = (owner[0]["attrs"]["data-series"], rect["attrs"]["data-day"])
            bars[key] = (float(rect["attrs"]["data-value"]), float(rect["attrs"]["height"]))
    assert {k: v for k, (v, _) in bars.items()} == pytest.approx(
        {
            ("oracle", "2026-03-01"): 0.60,
            ("oracle", "2026-03-03"): 0.20,
            ("search", "2026-03-01"): 0.03,
            ("search", "2026-03-02"): 0.01,
            (EVIL_ROLE, "2026-03-02"): 0.05,
        }
    )
    # heights are proportional to spend; the y axis ends at 1 USD (0.63 on 03-01 rounds up to 1)
    assert [h / v for v, h in bars.values()] == pytest.approx([224.0] * len(bars), abs=1e-3)
    day_labels = [e["text"] for e in page.elements if e["tag"] == "text" and e["text"].startswith("03-")]
    assert day_labels == ["03-01", "03-02", "03-03"]  # the day without a row of its own still has its place


def test_off_rails_chart_has_each_models_share(report_root):
    target = report_root / "report.html"
    assert main(["--root", str(report_root), "cost", "--html", str(target)]) == 0
    page = parse(target.read_text(encoding="utf-8"))
    bars = {g["attrs"]["data-series"]: g["attrs"]["data-value"] for g in inside(page, "off-rails-by-model", "g", "bar")}
    assert bars == {
        "openai:gpt-5.2": "25.0000",  # 0.20 of 0.80
        f"x:{EVIL_MODEL}": "100.0000",
        "google:gemini-3-flash-preview": "0.0000",
        "anthropic:claude-sonnet-4-5": "n/a",  # no spend
    }
    first = [e for e in page.elements if e["tag"] == "tr"][1]
    cells = [e["text"] for e in page.elements if e["tag"] == "td" and any(p is first for p in e["parents"])]
    # model, calls, spend, avg thread, off-rails %, p50, p95, failure rate (1 error in 4 calls)
    assert cells == ["openai:gpt-5.2", "4", "0.8000", "-", "25.0%", "0.0s", "0.0s", "25.0%"]


def test_ledger_strings_are_escaped(report_root):
    target = report_root / "report.html"
    assert main(["--root", str(report_root), "cost", "--html", str(target)]) == 0
    text = target.read_text(encoding="utf-8")
    assert EVIL_ROLE not in text and "<b>" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text and "evil&quot;&lt;b&gt;&amp;amp;" in text
    page = parse(text)
    assert any(e["text"] == EVIL_ROLE for e in page.elements if e["tag"] == "li")


def test_empty_ledger_still_writes_a_valid_report(tmp_path):
    (tmp_path / ".cadre.toml").write_text(f'[paths]\nledger = "{tmp_path / "none.sqlite"}"\n')
    target = tmp_path / "empty.html"
    assert main(["--root", str(tmp_path), "cost", "--html", str(target)]) == 0
    page = parse(target.read_text(encoding="utf-8"))
    assert "No model calls recorded" in next(e for e in page.elements if e["tag"] == "body")["text"]
    assert not [e for e in page.elements if e["tag"] == "svg"]


def test_unwritable_target_says_what_to_change(capsys, report_root):
    missing = report_root / "no-such-dir" / "report.html"
    assert main(["--root", str(report_root), "cost", "--html", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "cannot write the report" in err and "--html" in err
