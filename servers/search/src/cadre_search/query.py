"""Read a query: terms with weights, identifiers, quoted strings, and paths from tracebacks."""

from __future__ import annotations

import builtins
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from cadre_search.tokens import IDENTIFIER, STOPWORDS, parts

MAX_QUERY_CHARS = 20_000
_EXTS = r"py|pyi|js|jsx|mjs|cjs|ts|tsx|go|rs|java|c|h|cc|cpp|hpp|rb|md|toml|yaml|yml|json|cfg|ini"
_PY_FRAME = re.compile(r'File "([^"]+)", line (\d+)(?:, in ([\w<>.]+))?')
_JS_FRAME = re.compile(r"at (?:([\w$.<>]+) )?\(?([^\s()]+?\.(?:js|jsx|mjs|cjs|ts|tsx)):(\d+)")
_PATH = re.compile(rf"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.(?:{_EXTS}))\b(?::(\d+))?")
_QUOTED = re.compile(r"`([^`\n]{2,80})`|\"([\w.:/-]{2,80})\"|'([\w.:/-]{2,80})'")
_CODEY = re.compile(r"_|[a-z][A-Z]|[A-Z]{2}[a-z]|\d")  # {2}, not {2,}: the same matches, in linear time
_CODE_BLOCK = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n.*?(?:^[ \t]*\1|\Z)|^[ \t]*(?:>>>|\.\.\.) .*$", re.M | re.S)
_DEFINES = re.compile(r"^[ \t]*(?:>>> |\.\.\. )?[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+([A-Za-z_]\w*)", re.M)
_STRING = re.compile(r"[rbfuRBFU]{0,2}(\"\"\"|\'\'\'|\"|\')(?:\\.|(?!\1).)*?\1", re.S)
_TEST_CLASS = re.compile(r"\bTest[A-Z]\w*[a-z]")
_TRACEBACK_HEADER = re.compile(r"Traceback \(most recent call last\):")
_BUILTINS = frozenset(dir(builtins))
"""`ValueError`, `isinstance`: code-like but in every project, so weighted as plain words."""
_FENCE_INFO = re.compile(r"^([ \t]*(?:```|~~~))[^\n]*")
CODE_WEIGHT = 2
TRACE_WEIGHT = 3
TF_CAP = 3
CODE_ONCE = True


@dataclass
class QueryPlan:
    text: str
    weights: dict[str, int] = field(default_factory=dict)
    """Lower-cased term -> query weight (repetitions in the FTS query)."""
    identifiers: set[str] = field(default_factory=set)
    """Lower-cased code-like identifiers, including quoted ones."""
    quoted: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    """File paths mentioned, e.g. by traceback frames."""
    trace_functions: set[str] = field(default_factory=set)
    file_stems: set[str] = field(default_factory=set)
    mentions_tests: bool = False

    @property
    def empty(self) -> bool:
        return not self.weights


def plan(text: str) -> QueryPlan:
    """Analyse a query of any length (a few words to a pasted bug report)."""
    text = text.replace("\x00", " ")[:MAX_QUERY_CHARS]
    result = QueryPlan(text)
    counts: Counter[str] = Counter()
    boost: dict[str, int] = {}

    for match in _PY_FRAME.finditer(text):
        _add_path(result, match.group(1))
        if match.group(3) and not match.group(3).startswith("<"):
            result.trace_functions.add(match.group(3).rsplit(".", 1)[-1].lower())
    for match in _JS_FRAME.finditer(text):
        _add_path(result, match.group(2))
        if match.group(1):
            result.trace_functions.add(match.group(1).rsplit(".", 1)[-1].lower())
    for match in _PATH.finditer(text):
        _add_path(result, match.group(1))
    prose, code, local = _split_code(_TRACEBACK_HEADER.sub(" ", text))
    for match in _QUOTED.finditer(prose):
        quoted = next(g for g in match.groups() if g)
        result.quoted.append(quoted)
        for ident in IDENTIFIER.findall(quoted):
            if len(ident) > 2 and ident.lower() not in local:
                result.identifiers.add(ident.lower())
                boost[ident.lower()] = CODE_WEIGHT

    for source, once in ((prose, False), (code, CODE_ONCE)):
        seen: set[str] = set()
        for ident in IDENTIFIER.findall(source):
            lower = ident.lower()
            if len(lower) < 2 or lower in STOPWORDS or (once and lower in seen):
                continue  # a snippet repeats its own variables: each counts once
            seen.add(lower)
            counts[lower] += 1
            if _CODEY.search(ident) and lower not in local and ident not in _BUILTINS:
                result.identifiers.add(lower)
                boost[lower] = max(boost.get(lower, 1), CODE_WEIGHT)
            for piece in parts(ident):
                if piece not in STOPWORDS:
                    counts[piece] += 1
    for name in result.trace_functions | result.file_stems:
        boost[name] = TRACE_WEIGHT
        counts[name] += 1
    if not counts:  # only short words or stopwords: search them rather than nothing
        counts.update(ident.lower() for ident in IDENTIFIER.findall(text))
    for term, n in counts.items():
        result.weights[term] = boost.get(term, 1) * min(n, TF_CAP)
    result.mentions_tests = bool(
        re.search(r"\btest_\w+|\btests?/|\btests? (?:for|of|that|in)\b", text, re.IGNORECASE)
        or any(n.lower() not in local for n in _TEST_CLASS.findall(text))  # TestLinearDamper, not the user's own
    )
    return result


def _split_code(text: str) -> tuple[str, str, set[str]]:
    """The prose of a query, its code blocks without their string literals, and the names those blocks define.

    A pasted reproduction names the user's own classes and functions and holds the user's data;
    neither says where the library's code is, but the library calls it makes do.
    """
    local: set[str] = set()
    prose, code = [], []
    cursor = 0
    for block in _code_blocks(text):
        local.update(n.lower() for n in _DEFINES.findall(block.group(0)))
        snippet = _FENCE_INFO.sub(r"\1", block.group(0))  # ```python: the language is not a query word
        prose.append(text[cursor : block.start()])
        code.append(_STRING.sub(" ", snippet))
        cursor = block.end()
    prose.append(text[cursor:])
    return " ".join(prose), "\n".join(code), local


def _code_blocks(text: str) -> Iterator[re.Match[str]]:
    """Fenced blocks and interactive-session lines (`>>> ...`)."""
    return _CODE_BLOCK.finditer(text)


def _add_path(result: QueryPlan, raw: str) -> None:
    path = raw.replace("\\", "/").strip()
    if path.startswith("<"):
        return
    for marker in ("site-packages/", "dist-packages/"):  # an installed copy of this very project
        if marker in path:
            path = path.split(marker, 1)[1]
    if path not in result.paths:
        result.paths.append(path)
    name = path.rsplit("/", 1)[-1]
    stem = name.rsplit(".", 1)[0]
    if stem and stem != "__init__":
        result.file_stems.add(stem.lower())
