"""Ranking: FTS5 BM25 over code-aware terms, then boosts, then one hit per file with a `why`."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cadre_core.redact import redact
from cadre_search.index import Index
from cadre_search.query import QueryPlan
from cadre_search.tokens import IDENTIFIER, fts_quote

MAX_TERMS = 32
CANDIDATES = 250
COMMON_SHORT = 0.25
COMMON_LONG = 0.05
"""Terms in more than this share of chunks are dropped (when more than 8, or more than MAX_TERMS, remain)."""
COLUMN_WEIGHTS = (1.0, 0.5, 2.0, 3.0)  # body, parts, pathterms, symterms
SYMBOL_BOOST = 1.6
TRACE_FUNCTION_BOOST = 1.5
PATH_BOOST = 2.0
STEM_BOOST = 1.4
QUOTED_BOOST = 1.3
TEST_FACTOR = 0.3
DOC_FACTOR = 0.4
META_FACTOR = 0.3
DATA_FACTOR = 0.5
STUB_FACTOR = 0.6
AUX_FACTOR = 0.7
SNIPPET_LINES = 8
MORE_CHUNK_WEIGHTS = (0.3, 0.15)
"""A file's score: its best chunk plus these shares of its next best ones."""
_TEST_PATH = re.compile(
    r"(^|/)(tests?|testing|testsuite|spec|__tests__)(/|$)|(^|/)test_[^/]*$|_test\.\w+$|\.(spec|test)\.\w+$"
)
SHORT_QUERY_TERMS = 8
_ERROR_NAME = re.compile(r"(error|exception|warning)$")
_EXCEPTION_CLASS = re.compile(r"\s*class \w+\([^)]*(?:Error|Exception|Warning)\b")
"""A class deriving from an exception: `class StreamConsumed(StreamError):`."""
_STUB_EXTS = (".pyi", ".d.ts")
_DOC_EXTS = (".md", ".rst", ".txt", ".adoc")
_DATA_EXTS = (".json", ".yml", ".yaml", ".toml", ".cfg", ".ini", ".svg", ".xml", ".csv", ".bat", ".lock")
_AUXILIARY = re.compile(r"(^|/)(examples?|benchmarks?|scripts|gallery|docs?|tools)/")
_META = re.compile(
    r"(^|/)(changes|changelog|history|news|release[-_]?notes|contributing|authors|contributors|security|"
    r"code_of_conduct|pull_request_template|issue_template|license|copying)([./-]|$)|(^|/)\.github/"
)


@dataclass
class Hit:
    path: str
    start_line: int
    end_line: int
    symbol: str
    snippet: str
    score: float
    why: str
    also: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = {
            "path": self.path,
            "start_line": self.start_line,
            "end_line": self.end_line,
            "symbol": self.symbol or None,
            "snippet": self.snippet,
            "score": round(self.score, 3),
            "why": self.why,
        }
        if self.also:
            out["also"] = self.also
        return out


@dataclass
class _Candidate:
    id: int
    path: str
    start_line: int
    end_line: int
    symbol: str
    body: str
    score: float
    reasons: list[str] = field(default_factory=list)
    defines: tuple[str, int, int] | None = None
    """A query-named symbol defined in this chunk: (qualified name, start, end)."""


def _candidate(row: tuple[Any, ...], *, score: float) -> _Candidate:
    """A candidate from the first six columns of a chunk row: id, path, start, end, symbol, body."""
    return _Candidate(row[0], row[1], row[2], row[3], row[4], row[5], score=score)


def select_terms(index: Index, plan: QueryPlan) -> dict[str, float]:
    """The query terms worth searching: in the index, not too common, rarest and most weighted first."""
    terms = list(plan.weights)
    if not terms:
        return {}
    placeholders = ",".join("?" * len(terms))
    df = dict(index.query(f"SELECT term, doc FROM chunks_vocab WHERE term IN ({placeholders})", terms))  # noqa: S608
    total = max(1, index.chunk_count())
    scored = {}
    for term in terms:
        docs = df.get(term)
        if not docs:
            continue
        idf = math.log(1 + (total - docs + 0.5) / (docs + 0.5))
        scored[term] = plan.weights[term] * idf
    if len(scored) > 8:  # drop terms in most chunks when enough others remain
        common = COMMON_SHORT if len(scored) <= MAX_TERMS else COMMON_LONG  # long reports: distinctive words
        scored = {t: s for t, s in scored.items() if df[t] / total < common} or scored
    best = sorted(scored, key=lambda t: -scored[t])[:MAX_TERMS]
    return {t: plan.weights[t] for t in best}


def _fts_query(terms: dict[str, float]) -> str:
    phrases = []
    for term, weight in terms.items():
        phrases += [fts_quote(term)] * max(1, min(3, int(weight)))
    return " OR ".join(phrases)


def search(index: Index, plan: QueryPlan, *, limit: int = 10, scope: str = "") -> list[Hit]:
    """Ranked hits, one per file, best first."""
    terms = select_terms(index, plan)
    candidates: dict[int, _Candidate] = {}
    if terms:
        match = _fts_query(terms)
        if scope:  # filter while ranking, so the limit applies inside the scope
            sql = (
                "SELECT c.id, c.path, c.start_line, c.end_line, c.symbol, c.body, bm25(chunks_fts, ?, ?, ?, ?) AS s "
                "FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid WHERE chunks_fts MATCH ? "
                "AND (c.path = ? OR c.path LIKE ? ESCAPE '\\') ORDER BY s LIMIT ?"
            )
            args: list[object] = [*COLUMN_WEIGHTS, match, scope, _like_prefix(scope), CANDIDATES]
        else:  # rank on the FTS table alone, then fetch only the winners' text
            sql = (
                "WITH top AS (SELECT rowid AS id, bm25(chunks_fts, ?, ?, ?, ?) AS s FROM chunks_fts "
                "WHERE chunks_fts MATCH ? ORDER BY s LIMIT ?) "
                "SELECT c.id, c.path, c.start_line, c.end_line, c.symbol, c.body, top.s FROM top "
                "JOIN chunks c ON c.id = top.id"
            )
            args = [*COLUMN_WEIGHTS, match, CANDIDATES]
        for row in index.query(sql, args):
            candidates[row[0]] = _candidate(row, score=-row[6])
    _add_symbol_definitions(index, plan, candidates, scope)
    floor = min((c.score for c in candidates.values()), default=1.0)
    path_factors: dict[str, tuple[float, float, str | None]] = {}
    for cand in candidates.values():
        if cand.path not in path_factors:
            path_factors[cand.path] = _path_factor(cand.path, plan)
        _boost(cand, plan, floor, path_factors[cand.path])
    return _group(candidates.values(), plan, terms, limit)


def _like_prefix(scope: str) -> str:
    escaped = scope.rstrip("/").replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "/%"


def _add_symbol_definitions(index: Index, plan: QueryPlan, candidates: dict[int, _Candidate], scope: str) -> None:
    """Chunks defining a symbol named in the query join the candidates (even if BM25 missed them)
    and point at that definition's lines."""
    named = plan.identifiers | plan.trace_functions
    report = len(plan.weights) > SHORT_QUERY_TERMS  # a report names the exception it saw, not where it is raised
    if report:
        named = {n for n in named if not _ERROR_NAME.search(n)}
    names = sorted(named - {""})[:50]
    if not names:
        return
    placeholders = ",".join("?" * len(names))
    rows = index.query(
        "SELECT c.id, c.path, c.start_line, c.end_line, c.symbol, c.body, s.name, s.container, s.start_line, "  # noqa: S608
        "s.end_line FROM symbols s "
        "JOIN chunks c ON c.path = s.path AND c.start_line <= s.start_line AND c.end_line >= s.start_line "
        f"WHERE s.lname IN ({placeholders}) LIMIT 200",
        names,
    )
    floor = min((c.score for c in candidates.values()), default=1.0)
    for row in rows:
        if scope and not (row[1] == scope or row[1].startswith(scope.rstrip("/") + "/")):
            continue
        if report and _EXCEPTION_CLASS.match(_line_at(row[5], row[8] - row[2])):
            continue
        cand = candidates.get(row[0])
        if cand is None:
            cand = candidates[row[0]] = _candidate(row, score=floor)
        qualified = f"{row[7]}.{row[6]}" if row[7] else row[6]
        if not cand.defines:
            cand.defines = (qualified, row[8], row[9])


def _line_at(body: str, offset: int) -> str:
    """Line `offset` (0-based) of a chunk body, or "" past its end."""
    lines = body.split("\n", offset + 1)
    return lines[offset] if 0 <= offset < len(lines) else ""


def _same_file(indexed: str, named: str) -> bool:
    """Whether a path named in a query (maybe absolute, maybe partial) is this indexed path.

    Only at a `/` boundary: `t.py` is not `report.py`.
    """
    return indexed == named or indexed.endswith("/" + named) or named.endswith("/" + indexed)


def _path_factor(path: str, plan: QueryPlan) -> tuple[float, float, str | None]:
    """(multiplier, added floors, reason) for everything a file's path says about the query."""
    lower = path.lower()
    factor, floors, reason = 1.0, 0.0, None
    if any(_same_file(lower, p.lower().lstrip("./")) for p in plan.paths):
        factor, floors, reason = PATH_BOOST, 1.0, "path named in query"
    else:
        stem = lower.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        if stem in plan.file_stems or (stem in plan.identifiers and stem not in ("__init__", "main", "utils")):
            factor, reason = STEM_BOOST, f"file name {stem}"
    if _META.search(lower):  # changelogs, contributing guides, templates: they echo every fix's wording
        factor *= META_FACTOR
    elif not plan.mentions_tests and _TEST_PATH.search(lower):
        factor *= TEST_FACTOR
    elif lower.endswith(_STUB_EXTS):  # declarations only: the behaviour a report describes is elsewhere
        factor *= STUB_FACTOR
    elif lower.endswith(_DOC_EXTS) or lower.rsplit("/", 1)[-1].startswith("readme"):
        factor *= DOC_FACTOR
    elif lower.endswith(_DATA_EXTS) or lower.rsplit("/", 1)[-1] in ("makefile", "dockerfile") or "/." in f"/{lower}":
        factor *= DATA_FACTOR
    elif _AUXILIARY.search(lower):
        factor *= AUX_FACTOR
    return factor, floors, reason


def _boost(cand: _Candidate, plan: QueryPlan, floor: float, path_factor: tuple[float, float, str | None]) -> None:
    name = cand.symbol.rsplit(".", 1)[-1].lower() if cand.symbol else ""
    if cand.defines:
        cand.score *= SYMBOL_BOOST
        cand.reasons.append(f"defines {cand.defines[0]}")
    if name and name in plan.trace_functions:
        cand.score *= TRACE_FUNCTION_BOOST
        cand.reasons.append(f"in traceback: {name}")
    factor, floors, reason = path_factor
    cand.score = cand.score * factor + floors * floor
    if reason:
        cand.reasons.append(reason)
    quoted = [q for q in plan.quoted if q in cand.body]
    if quoted:
        cand.score *= QUOTED_BOOST
        cand.reasons.append("contains " + ", ".join(f"`{q}`" for q in quoted[:3]))


def _group(candidates: Iterable[_Candidate], plan: QueryPlan, terms: dict[str, float], limit: int) -> list[Hit]:
    by_file: dict[str, list[_Candidate]] = {}
    for cand in sorted(candidates, key=lambda c: -c.score):
        by_file.setdefault(cand.path, []).append(cand)
    ranked = []
    for path, cands in by_file.items():
        score = cands[0].score + sum(c.score * w for c, w in zip(cands[1:], MORE_CHUNK_WEIGHTS, strict=False))
        ranked.append((score, path, cands))
    ranked.sort(key=lambda r: (-r[0], r[1]))
    hits = []
    for score, path, cands in ranked[:limit]:
        best = cands[0]
        matched = _matched_terms(best.body, terms)
        reasons = list(dict.fromkeys(best.reasons))
        if matched:
            reasons.append("matches " + ", ".join(matched[:6]))
        snippet = _snippet(best, terms)
        symbol, first, last = best.defines or (best.symbol, best.start_line, best.end_line)
        others = [c for c in cands[1:3] if not (c.start_line <= best.end_line and c.end_line >= best.start_line)]
        hits.append(
            Hit(
                path=path,
                start_line=first,
                end_line=last,
                symbol=symbol,
                snippet=snippet,
                score=score,
                why="; ".join(reasons) or "text match",
                also=[{"start_line": c.start_line, "end_line": c.end_line, "symbol": c.symbol or None} for c in others],
            )
        )
    return hits


def _matched_terms(body: str, terms: dict[str, float]) -> list[str]:
    words = {w.lower() for w in IDENTIFIER.findall(body)}
    words |= {p for w in words for p in w.split("_")}
    return [t for t in terms if t in words]


def _snippet(cand: _Candidate, terms: dict[str, float]) -> str:
    """A few lines around the line with the most query terms."""
    lines = cand.body.split("\n")
    if not lines:
        return ""
    best_index, best_count = 0, -1
    for i, line in enumerate(lines):
        lower = line.lower()
        count = sum(1 for t in terms if t in lower)
        if count > best_count:
            best_index, best_count = i, count
    start = max(0, min(best_index - 2, len(lines) - SNIPPET_LINES))
    window = [line[:200] for line in lines[start : start + SNIPPET_LINES]]
    return redact("\n".join(window), filename=cand.path)[0].strip("\n")
