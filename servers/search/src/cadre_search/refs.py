"""Who calls, imports or names a symbol as a type: references from tree-sitter, nearest first.

Python, JavaScript, TypeScript and Go files are parsed (the files the index says mention the
name, so the work is proportional to the name's use, not the tree); other languages get plain
whole-word line matches. References are ranked by proximity to the definitions: the same file,
then the same directory, then by how much of the path they share.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from functools import cache
from typing import Any

from cadre_core.files import read_text
from cadre_search.chunks import _parser
from cadre_search.files import language_of

MAX_FILES = 200
_KINDS = ("call", "import", "type")
"""What a reference is, from strongest: a call (or instantiation, decorator, JSX element), an import,
or a type use (annotation, base class)."""
_PY = """
(call function: (identifier) @name) @call
(call function: (attribute attribute: (identifier) @name)) @call
(decorator (identifier) @name) @call
(decorator (call function: (identifier) @name)) @call
(import_from_statement name: (dotted_name (identifier) @name)) @import
(import_from_statement name: (aliased_import name: (dotted_name (identifier) @name))) @import
(import_statement name: (dotted_name (identifier) @name)) @import
(import_statement name: (aliased_import name: (dotted_name (identifier) @name))) @import
(type (identifier) @name) @type
(type (attribute attribute: (identifier) @name)) @type
(class_definition superclasses: (argument_list (identifier) @name)) @type
(class_definition superclasses: (argument_list (attribute attribute: (identifier) @name))) @type
"""
_JS = """
(call_expression function: (identifier) @name) @call
(call_expression function: (member_expression property: (property_identifier) @name)) @call
(new_expression constructor: (identifier) @name) @call
(new_expression constructor: (member_expression property: (property_identifier) @name)) @call
(import_specifier name: (identifier) @name) @import
(import_clause (identifier) @name) @import
(export_specifier name: (identifier) @name) @import
"""
_JSX = """
(jsx_opening_element name: (identifier) @name) @call
(jsx_self_closing_element name: (identifier) @name) @call
"""
_TS_TYPES = """
(type_annotation (type_identifier) @name) @type
(extends_clause value: (identifier) @name) @type
(implements_clause (type_identifier) @name) @type
"""
_QUERIES = {
    "python": _PY,
    "javascript": _JS + _JSX + "(class_heritage (identifier) @name) @type\n",
    "typescript": _JS + _TS_TYPES,
    "tsx": _JS + _JSX + _TS_TYPES,
    "go": """
(call_expression function: (identifier) @name) @call
(call_expression function: (selector_expression field: (field_identifier) @name)) @call
(composite_literal type: (type_identifier) @name) @call
(composite_literal type: (qualified_type name: (type_identifier) @name)) @call
(import_spec path: (interpreted_string_literal) @name) @import
(type_identifier) @name @type
""",
}
_DEFINITIONS = {
    "function_definition", "class_definition", "function_declaration", "generator_function_declaration",
    "method_definition", "class_declaration", "method_declaration", "variable_declarator",
}  # fmt: skip


@cache
def _query(language: str) -> Any:
    import tree_sitter as ts

    tools = _parser(language)
    return ts.Query(tools[0].language, _QUERIES[language]) if tools else None


def references(
    root: str, names: set[str], paths: Iterable[str], definitions: list[dict[str, Any]], *, limit: int = 20
) -> list[dict[str, Any]]:
    """Call sites and imports of any of `names` (exact case) in `paths` (relative to `root`), nearest to
    `definitions` first."""
    found: list[dict[str, Any]] = []
    defined = {(d["path"], d["start_line"]) for d in definitions}
    for path in list(dict.fromkeys(paths))[:MAX_FILES]:
        try:
            text = read_text(os.path.join(root, path))
        except OSError:
            continue
        language = language_of(path)
        rows = _parsed(text, names, language) if language in _QUERIES else _text_matches(text, names)
        found += [{"path": path, **row, "text": _line(text, row["line"], path)}
                  for row in rows if (path, row["line"]) not in defined]  # fmt: skip
    homes = [d["path"] for d in definitions]
    found.sort(key=lambda r: (*_distance(r["path"], homes), r["path"], r["line"]))
    return found[:limit]


def _parsed(text: str, names: set[str], language: str) -> list[dict[str, Any]]:
    import tree_sitter as ts

    tools, query = _parser(language), _query(language)
    if tools is None or query is None:
        return _text_matches(text, names)
    tree = tools[0].parse(text.encode("utf-8", errors="replace"))
    out: dict[int, dict[str, Any]] = {}
    for _, captures in ts.QueryCursor(query).matches(tree.root_node):
        kind = next(k for k in ("call", "import", "type") if k in captures)
        node = captures["name"][0]
        label = (node.text or b"").decode("utf-8", errors="replace")
        if kind == "import" and language == "go":
            label = label.strip('"').rsplit("/", 1)[-1]
        if label not in names:
            continue
        line = node.start_point[0] + 1
        if line not in out or _KINDS.index(kind) < _KINDS.index(out[line]["kind"]):
            out[line] = {"line": line, "kind": kind, "caller": _caller(node)}
    return sorted(out.values(), key=lambda r: r["line"])


def _caller(node: Any) -> str | None:
    """The name of the definition around `node`, if any."""
    parent = node.parent
    while parent is not None:
        function_value = parent.type != "variable_declarator" or (
            (value := parent.child_by_field_name("value")) is not None
            and value.type in ("arrow_function", "function_expression")
        )
        if parent.type in _DEFINITIONS and function_value:
            named = parent.child_by_field_name("name")
            if named is not None and named.text:
                return str(named.text.decode("utf-8", errors="replace"))
        parent = parent.parent
    return None


def _text_matches(text: str, names: set[str]) -> list[dict[str, Any]]:
    """Lines naming any of `names` as a whole word, for languages without a references query."""
    pattern = re.compile(r"(?<![\w$])(?:" + "|".join(map(re.escape, sorted(names))) + r")(?![\w$])")
    return [{"line": n, "kind": "text", "caller": None}
            for n, line in enumerate(text.split("\n"), 1) if pattern.search(line)]  # fmt: skip


def _line(text: str, line: int, path: str) -> str:
    from cadre_core.redact import redact

    lines = text.split("\n")
    return redact(lines[line - 1].strip()[:200], filename=path)[0] if 0 < line <= len(lines) else ""


def _distance(path: str, homes: list[str]) -> tuple[int, int]:
    """(tier, -shared folders) to the nearest definition: 0 same file, 1 same folder, 2 elsewhere."""
    if not homes:
        return 2, 0
    folder = path.rsplit("/", 1)[0] if "/" in path else ""
    best = (2, 0)
    for home in homes:
        home_folder = home.rsplit("/", 1)[0] if "/" in home else ""
        if home == path:
            return 0, 0
        common = os.path.commonpath([folder, home_folder]) if folder and home_folder else ""
        shared = common.count("/") + 1 if common else 0
        best = min(best, (1, 0) if folder == home_folder else (2, -shared))
    return best
