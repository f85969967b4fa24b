"""Best-matching line windows of one text for a query, by query-term overlap (no index needed)."""

from __future__ import annotations

import re

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


def best_windows(text: str, query: str, *, size: int = 30, limit: int = 3) -> list[tuple[int, int, str, float]]:
    """Up to `limit` non-overlapping windows of about `size` lines as (start, end, text, score).

    Score = distinct query terms in the window + 0.1 x their occurrences; windows with no term are left out."""
    terms = query_terms(query)
    lines = text.split("\n")
    if not terms or not lines:
        return []
    hits = [{t for t in terms if t in line.lower()} for line in lines]
    scored = []
    for start in range(0, max(1, len(lines) - size // 2), max(1, size // 3)):
        window = hits[start : start + size]
        distinct = set().union(*window)
        if distinct:
            scored.append((len(distinct) + 0.1 * sum(len(h) for h in window), start))
    chosen: list[tuple[int, int, str, float]] = []
    for score, start in sorted(scored, key=lambda s: (-s[0], s[1])):
        end = min(len(lines), start + size)
        if any(start < c_end and c_start - 1 < end for c_start, c_end, _, _ in chosen):
            continue
        chosen.append((start + 1, end, "\n".join(lines[start:end]), round(score, 2)))
        if len(chosen) == limit:
            break
    return chosen
