"""Code-aware tokens: whole identifiers plus their camelCase / snake_case parts."""

from __future__ import annotations

import re
from functools import lru_cache

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HUMPS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
LONGEST_SPLIT = 128
"""Longer identifiers are not split: no real one is that long, and `_HUMPS` is quadratic in a run of capitals."""

STOPWORDS = frozenset(
    [
        # words every bug report and fix message uses, which say nothing about where the code is
        "fix",
        "fixes",
        "fixed",
        "fixing",
        "closes",
        "resolves",
        "issue",
        "issues",
        "bug",
        "bugs",
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "may",
        "might",
        "must",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "should",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        # prose filler of bug reports: how people describe a problem, not where it is
        "actually",
        "anything",
        "currently",
        "didn",
        "doesn",
        "don",
        "expected",
        "happen",
        "happened",
        "happens",
        "however",
        "instead",
        "isn",
        "just",
        "like",
        "me",
        "my",
        "please",
        "really",
        "seem",
        "seems",
        "something",
        "thanks",
        "tried",
        "trying",
        "wasn",
        "won",
        "shouldn",
        "couldn",
        "wouldn",
        "aren",
        "weren",
        "hasn",
        "haven",
        "ll",
        "ve",
        "whether",
        "itself",
        "during",
        "through",
        "certainly",
        "up",
    ]
)


@lru_cache(maxsize=200_000)
def parts(identifier: str) -> tuple[str, ...]:
    """Lower-cased sub-words of a compound identifier; empty for a simple word.

    `getUserName` -> (get, user, name); `retry_policy` -> (retry, policy); `HTTPServer` -> (http, server).
    """
    if len(identifier) > LONGEST_SPLIT:
        return ()
    pieces: list[str] = []
    for chunk in identifier.split("_"):
        if chunk:
            pieces += [m.lower() for m in _HUMPS.findall(chunk)]
    pieces = [p for p in pieces if len(p) > 1]
    if len(pieces) < 2:
        return ()
    return tuple(pieces)


def compound_parts(text: str) -> str:
    """Space-joined sub-words of every compound identifier in `text` (each once)."""
    seen: set[str] = set()
    out: list[str] = []
    for ident in set(IDENTIFIER.findall(text)):
        for piece in parts(ident):
            if piece not in seen:
                seen.add(piece)
                out.append(piece)
    return " ".join(out)


def path_terms(path: str) -> str:
    """Terms for a file path: each directory and file name, its stem, and their parts."""
    out: list[str] = []
    for segment in path.replace("\\", "/").split("/"):
        stem = segment.rsplit(".", 1)[0] if "." in segment[1:] else segment
        for word in IDENTIFIER.findall(stem):
            out.append(word.lower())
            out.extend(parts(word))
    return " ".join(dict.fromkeys(out))


def fts_quote(term: str) -> str:
    """A term as an FTS5 string literal."""
    return '"' + term.replace('"', '""') + '"'
