"""Best-matching line windows of one text (a docs page, a single-file module) for a query; no index needed."""

from __future__ import annotations

import math
import re

WINDOW_MIN = 20
WINDOW_MAX = 40
HEADING = re.compile(r"#{1,6}\s+\S")
FENCE = re.compile(r"\s*(```|~~~)")
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
STOPWORDS = frozenset(
    [
        "the",
        "and",
        "for",
        "with",
        "how",
        "does",
        "what",
        "when",
        "where",
        "which",
        "this",
        "that",
        "from",
        "into",
        "are",
        "was",
        "use",
        "using",
        "can",
        "not",
        "you",
        "your",
    ]
)


def query_terms(query: str) -> set[str]:
    """Lower-cased words of 3+ characters, without common English stop words; snake_case parts too."""
    terms = {w.lower() for w in WORD.findall(query)} - STOPWORDS
    return terms | {p for t in terms for p in t.split("_") if len(p) > 2} - STOPWORDS


def sections(lines: list[str]) -> list[tuple[int, int]]:
    """1-based (start, end) windows aligned on Markdown headings.

    A section is joined to the one before it when that one is only a heading, or is shorter than
    `WINDOW_MIN` lines and this one is its subsection (a deeper heading) and both fit in `WINDOW_MAX`;
    longer sections are cut into pieces of `WINDOW_MIN`..`WINDOW_MAX` lines at a blank line where there is one.
    """
    starts, fenced = [0], False
    for i, line in enumerate(lines):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and i and HEADING.match(line):
            starts.append(i)
    spans = [(s, e) for s, e in zip(starts, [*starts[1:], len(lines)], strict=True) if e > s]

    def level(i: int) -> int:
        return len(lines[i]) - len(lines[i].lstrip("#")) if HEADING.match(lines[i]) else 0

    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged:
            ps, pe = merged[-1]
            heading_only = sum(1 for line in lines[ps:pe] if line.strip()) <= 1
            subsection = pe - ps < WINDOW_MIN and e - ps <= WINDOW_MAX and level(s) > level(ps)
            if heading_only or subsection:
                s = merged.pop()[0]
        merged.append((s, e))
    windows = []
    for s, e in merged:
        while e - s > WINDOW_MAX:
            cut = next((i for i in range(s + WINDOW_MAX, s + WINDOW_MIN, -1) if not lines[i - 1].strip()), s + 30)
            windows.append((s + 1, cut))
            s = cut
        windows.append((s + 1, e))
    return windows


def score_windows(lines: list[str], query: str) -> list[tuple[float, int, int]]:
    """(score, start, end) of windows with a query term, best first.

    Score = Σ over query terms in the window of idf × (1 + ln tf), where tf counts the term as a substring
    of the lower-cased window and idf = ln(1 + windows / windows with the term); a term in the window's
    heading counts its idf once more, and the whole query as a phrase adds 2.
    """
    terms = query_terms(query)
    windows = sections(lines)
    if not terms or not windows:
        return []
    texts = ["\n".join(lines[s - 1 : e]).lower() for s, e in windows]
    df = {t: sum(1 for text in texts if t in text) for t in terms}
    phrase = " ".join(query.lower().split())
    scored = []
    for (start, end), text in zip(windows, texts, strict=True):
        heading = lines[start - 1].lower() if HEADING.match(lines[start - 1]) else ""
        score = 0.0
        for term in terms:
            tf = text.count(term)
            if tf:
                idf = math.log(1 + len(windows) / df[term])
                score += idf * (1 + math.log(tf)) + (idf if term in heading else 0.0)
        if score and " " in phrase and phrase in " ".join(text.split()):
            score += 2.0
        if score:
            scored.append((score, start, end))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return scored
