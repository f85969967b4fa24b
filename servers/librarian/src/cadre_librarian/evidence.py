"""Everything the librarian has read in one research call, and the check of the citations it makes."""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

from cadre_librarian.sources import Excerpt

MAX_CITED_LINES = 400
CODE = re.compile(r"(```[\s\S]*?(?:```|$)|`[^`\n]*`)")
"""Fenced blocks and inline code: their brackets are code, not citation markers."""
MARKERS = re.compile(r"(?<![\w\]])((?:\[\d{1,3}(?:\s*,\s*\d{1,3})*\])+)(?![(:])")
"""A run of markers like [1], [1][2] or [1, 2]; not `x[1]`, a reference link `[text][1]` or `[1](url)`."""


def _squash(text: str) -> str:
    return " ".join(text.split())


def _file_key(e: Excerpt) -> tuple[str, str, str | None, str]:
    return (e.source, e.package_or_repo, e.version_or_ref, e.path)


def anchored(url: str | None, source: str, start: int, end: int) -> str | None:
    """The excerpt's URL pointing at `start..end` (GitHub and file URLs take #L anchors; pages do not)."""
    if not url or source == "web":
        return url
    return f"{url.split('#', 1)[0]}#L{start}-L{end}"


@dataclass
class CheckedCitation:
    excerpt: Excerpt
    quote: str
    fixed: bool = False

    def as_dict(self) -> dict[str, Any]:
        e = self.excerpt
        return {**e.citation(), "url": anchored(e.url, e.source, e.start_line, e.end_line), "quote": self.quote}


class Evidence:
    """Excerpts shown to the model, each with an id (`E1`, `E2`, ...), and every line seen per file."""

    def __init__(self) -> None:
        self.items: dict[str, Excerpt] = {}
        self._ids: dict[tuple[object, ...], str] = {}
        self._lines: dict[tuple[object, ...], dict[int, str]] = {}

    def add(self, excerpt: Excerpt) -> str:
        """The excerpt's id (the same id when the same span is added again)."""
        key = (*_file_key(excerpt), excerpt.start_line, excerpt.end_line)
        if key not in self._ids:
            self._ids[key] = f"E{len(self.items) + 1}"
            self.items[self._ids[key]] = excerpt
            seen = self._lines.setdefault(_file_key(excerpt), {})
            for offset, line in enumerate(excerpt.text.split("\n")):
                seen[excerpt.start_line + offset] = line
        return self._ids[key]

    def render(self, excerpt: Excerpt) -> str:
        """`E3 [local] httpx@0.28.1 httpx/_client.py:10-40 <url>` then the numbered lines."""
        url = f" {excerpt.url}" if excerpt.url else ""
        return f"{self.add(excerpt)} {excerpt.header()}{url}\n{excerpt.numbered()}"

    def check(self, evidence_id: str, start_line: int, end_line: int, quote: str) -> CheckedCitation | None:
        """The citation if its span was really read and holds `quote`; moved to where the quote is when
        the lines are off; None when neither works."""
        base = self.items.get(evidence_id.strip())
        if base is None:
            return None
        seen = self._lines.get(_file_key(base), {})
        start, end = min(start_line, end_line), max(start_line, end_line)
        wanted = _squash(quote)
        if not wanted:
            return None
        if end - start < MAX_CITED_LINES:
            span = [seen.get(n) for n in range(start, end + 1)]
            lines = [line for line in span if line is not None]
            if len(lines) == len(span) and wanted in _squash("\n".join(lines)):  # every line of the span was read
                return CheckedCitation(base.with_lines(start, end, "\n".join(lines)), quote)
        found = self._locate(seen, wanted)
        if found is None:
            return None
        start, end = found
        text = "\n".join(seen[n] for n in range(start, end + 1))
        return CheckedCitation(base.with_lines(start, end, text), quote, fixed=True)

    @staticmethod
    def _locate(seen: dict[int, str], wanted: str) -> tuple[int, int] | None:
        """The first run of consecutive seen lines whose text (whitespace squashed) contains `wanted`;
        one pass over each run of lines read."""
        runs: list[list[int]] = []
        for n in sorted(seen):
            if runs and runs[-1][-1] == n - 1:
                runs[-1].append(n)
            else:
                runs.append([n])
        for run in runs:
            offsets, numbers, parts, pos = [], [], [], 0
            for n in run:
                if part := _squash(seen[n]):
                    offsets.append(pos)
                    numbers.append(n)
                    parts.append(part)
                    pos += len(part) + 1
            at = " ".join(parts).find(wanted)
            if at >= 0:
                first = numbers[bisect_right(offsets, at) - 1]
                last = numbers[bisect_right(offsets, at + len(wanted) - 1) - 1]
                return first, last
        return None


def check_citations(
    evidence: Evidence, answer: str, cited: list[dict[str, Any]]
) -> tuple[str, list[dict[str, Any]], list[str]]:
    """Checked citations, the answer with its [n] markers renumbered to them, and notes on what was
    dropped or moved."""
    kept: list[dict[str, Any]] = []
    renumber: dict[int, int] = {}
    notes: list[str] = []
    for number, cite in enumerate(cited, start=1):
        checked = evidence.check(
            str(cite.get("evidence", "")), int(cite.get("start_line", 0)), int(cite.get("end_line", 0)),
            str(cite.get("quote", "")),
        )  # fmt: skip
        label = f"[{number}] {cite.get('evidence')}:{cite.get('start_line')}-{cite.get('end_line')}"
        if checked is None:
            notes.append(f"dropped citation {label}: the span was not read or does not hold the quote")
            continue
        if checked.fixed:
            e = checked.excerpt
            notes.append(f"moved citation {label} to lines {e.start_line}-{e.end_line}, where the quote is")
        as_dict = checked.as_dict()
        if as_dict in kept:
            renumber[number] = kept.index(as_dict) + 1
            continue
        kept.append(as_dict)
        renumber[number] = len(kept)

    return renumber_markers(answer, renumber), kept, notes


def renumber_markers(answer: str, renumber: dict[int, int]) -> str:
    """`answer` with each citation marker [n] mapped through `renumber`; markers of dropped citations
    are removed. Code spans and fenced blocks are left as they are."""

    def group(numbers: str) -> str:
        new = [renumber.get(int(n)) for n in numbers.split(",")]
        kept = list(dict.fromkeys(n for n in new if n))
        return f"[{', '.join(map(str, kept))}]" if kept else ""

    def run(match: re.Match[str]) -> str:
        return "".join(group(g) for g in re.findall(r"\[([^\]]*)\]", match.group(1)))

    pieces = CODE.split(answer)
    return "".join(piece if i % 2 else MARKERS.sub(run, piece) for i, piece in enumerate(pieces))
