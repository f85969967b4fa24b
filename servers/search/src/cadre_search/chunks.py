"""Definition-aware chunks and symbols with tree-sitter; line windows for everything else.

Grammars come from the per-language wheels (`tree-sitter-python`, ...), which ship
compiled and never download anything.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from typing import Any

MAX_CHUNK_LINES = 80
WINDOW_LINES = 40
WINDOW_OVERLAP = 8

_GRAMMARS = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "java": ("tree_sitter_java", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
    "ruby": ("tree_sitter_ruby", "language"),
}
_JS = """
(function_declaration name: (_) @name) @def
(generator_function_declaration name: (_) @name) @def
(class_declaration name: (_) @name) @def
(method_definition name: (_) @name) @def
(variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)]) @def
"""
_TS = (
    _JS
    + """
(abstract_class_declaration name: (_) @name) @def
(interface_declaration name: (_) @name) @def
(type_alias_declaration name: (_) @name) @def
(enum_declaration name: (_) @name) @def
"""
)
_C = """
(function_definition declarator: (function_declarator declarator: (_) @name)) @def
(function_definition declarator: (pointer_declarator declarator: (function_declarator declarator: (_) @name))) @def
(struct_specifier name: (_) @name body: (_)) @def
(enum_specifier name: (_) @name body: (_)) @def
(type_definition declarator: (type_identifier) @name) @def
"""
_QUERIES = {
    "python": """
(function_definition name: (identifier) @name) @def
(class_definition name: (identifier) @name) @def
""",
    "javascript": _JS,
    "typescript": _TS,
    "tsx": _TS,
    "go": """
(function_declaration name: (_) @name) @def
(method_declaration name: (_) @name) @def
(type_spec name: (_) @name) @def
""",
    "rust": """
(function_item name: (_) @name) @def
(struct_item name: (_) @name) @def
(enum_item name: (_) @name) @def
(trait_item name: (_) @name) @def
(impl_item type: (_) @name) @def
(mod_item name: (_) @name) @def
(macro_definition name: (_) @name) @def
""",
    "java": """
(class_declaration name: (_) @name) @def
(interface_declaration name: (_) @name) @def
(enum_declaration name: (_) @name) @def
(record_declaration name: (_) @name) @def
(method_declaration name: (_) @name) @def
(constructor_declaration name: (_) @name) @def
""",
    "c": _C,
    "cpp": _C
    + """
(class_specifier name: (_) @name body: (_)) @def
(namespace_definition name: (_) @name) @def
""",
    "ruby": """
(method name: (_) @name) @def
(singleton_method name: (_) @name) @def
(class name: (_) @name) @def
(module name: (_) @name) @def
""",
}
_KINDS = {
    "function_definition": "function", "function_declaration": "function", "function_item": "function",
    "generator_function_declaration": "function", "variable_declarator": "function", "method": "method",
    "singleton_method": "method", "method_definition": "method", "method_declaration": "method",
    "constructor_declaration": "method", "class_definition": "class", "class_declaration": "class",
    "abstract_class_declaration": "class", "class_specifier": "class", "class": "class", "struct_item": "struct",
    "struct_specifier": "struct", "enum_item": "enum", "enum_specifier": "enum", "enum_declaration": "enum",
    "interface_declaration": "interface", "trait_item": "trait", "impl_item": "impl", "type_spec": "type",
    "type_alias_declaration": "type", "type_definition": "type", "record_declaration": "class",
    "module": "module", "mod_item": "module", "namespace_definition": "namespace", "macro_definition": "macro",
}  # fmt: skip


@dataclass(frozen=True)
class Symbol:
    name: str
    kind: str
    start_line: int
    end_line: int
    container: str = ""

    @property
    def qualified(self) -> str:
        return f"{self.container}.{self.name}" if self.container else self.name


@dataclass(frozen=True)
class Chunk:
    start_line: int
    end_line: int
    text: str
    symbol: str = ""
    kind: str = ""


@cache
def _parser(language: str) -> tuple[Any, Any] | None:
    import tree_sitter as ts

    spec = _GRAMMARS.get(language)
    if spec is None:
        return None
    module, attr = spec
    lang = ts.Language(getattr(importlib.import_module(module), attr)())
    return ts.Parser(lang), ts.Query(lang, _QUERIES[language])


def symbols_of(text: str, language: str | None) -> list[Symbol]:
    """Definitions in source order, with their containers."""
    if language is None or (tools := _parser(language)) is None:
        return []
    import tree_sitter as ts

    parser, query = tools
    data = text.encode("utf-8", errors="replace")
    tree = parser.parse(data)
    found: list[tuple[int, int, int, int, str, str]] = []
    for _, captures in ts.QueryCursor(query).matches(tree.root_node):
        node, name = captures["def"][0], captures["name"][0]
        outer = node
        if node.parent is not None and node.parent.type in ("decorated_definition", "lexical_declaration"):
            outer = node.parent
        label = (name.text or b"").decode("utf-8", errors="replace").strip()
        kind = _KINDS.get(node.type, "definition")
        found.append((outer.start_byte, outer.end_byte, outer.start_point[0] + 1, outer.end_point[0] + 1, label, kind))
    found.sort(key=lambda f: (f[0], -f[1]))
    symbols: list[Symbol] = []
    types: set[str] = set()
    stack: list[tuple[int, str]] = []  # (end byte, qualified name) of open definitions
    for start, end, first, last, label, kind in found:
        while stack and stack[-1][0] <= start:
            stack.pop()
        container = stack[-1][1] if stack else ""
        if kind == "function" and container in types:
            kind = "method"
        sym = Symbol(label, kind, first, last, container)
        if kind in ("class", "struct", "impl", "trait", "interface"):
            types.add(sym.qualified)
        symbols.append(sym)
        stack.append((end, sym.qualified))
    return symbols


def chunk_file(text: str, language: str | None) -> tuple[list[Chunk], list[Symbol]]:
    """Chunks that follow definitions where a grammar exists, and the file's symbols."""
    lines = text.split("\n")
    symbols = symbols_of(text, language) if language else []
    if not symbols:
        return _windows(lines, 1, len(lines)), symbols
    chunks: list[Chunk] = []
    _cover(lines, symbols, 1, len(lines), "", chunks)
    chunks.sort(key=lambda c: c.start_line)
    return chunks, symbols


def _cover(lines: list[str], symbols: list[Symbol], start: int, end: int, container: str, out: list[Chunk]) -> None:
    """Chunk lines start..end: each direct child definition on its own, gaps as windows."""
    children = [s for s in symbols if s.container == container and s.start_line >= start and s.end_line <= end]
    cursor = start
    for sym in children:
        if sym.start_line > cursor:
            out.extend(_windows(lines, cursor, sym.start_line - 1, symbol=container))
        size = sym.end_line - sym.start_line + 1
        if size <= MAX_CHUNK_LINES or not any(s.container == sym.qualified for s in symbols):
            for piece in _windows(lines, sym.start_line, sym.end_line, size=max(MAX_CHUNK_LINES, 1)):
                out.append(Chunk(piece.start_line, piece.end_line, piece.text, sym.qualified, sym.kind))
        else:
            _cover(lines, symbols, sym.start_line, sym.end_line, sym.qualified, out)
        cursor = max(cursor, sym.end_line + 1)
    if cursor <= end:
        out.extend(_windows(lines, cursor, end, symbol=container))


def _windows(lines: list[str], start: int, end: int, *, size: int = WINDOW_LINES, symbol: str = "") -> list[Chunk]:
    """Line windows over start..end (1-based, inclusive), skipping blank-only windows."""
    out: list[Chunk] = []
    step = max(1, size - WINDOW_OVERLAP) if end - start + 1 > size else size
    line = start
    while line <= end:
        last = min(end, line + size - 1)
        text = "\n".join(lines[line - 1 : last])
        if text.strip():
            out.append(Chunk(line, last, text, symbol, "" if not symbol else "body"))
        if last == end:
            break
        line += step
    return out
