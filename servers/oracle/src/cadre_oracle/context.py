"""What an oracle call reads: files resolved inside the workspace, project instructions, packed to a budget.

Plain functions, no MCP. Every text that leaves here has been through `cadre_core.redact`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePath

import pathspec

from cadre_core.errors import WorkspaceError
from cadre_core.files import (
    BINARY,
    DEFAULT_MAX_BYTES,
    NOT_FILE,
    SENSITIVE,
    TOO_BIG,
    IgnoreRules,
    file_problem,
    is_secret_path,
    is_skipped_dir,
    read_redacted,
)
from cadre_core.models.base import CHARS_PER_TOKEN
from cadre_core.workspace import Workspace

INSTRUCTION_FILES = ("AGENTS.md", "CLAUDE.md", "GEMINI.md", ".cursorrules", ".github/copilot-instructions.md")
INSTRUCTIONS_MAX_CHARS = 20_000
DEFAULT_MAX_FILES = 200
_GLOB_CHARS = frozenset("*?[")
_NOTE_EXAMPLES = 5

__all__ = ["BINARY", "NOT_FILE", "SENSITIVE", "TOO_BIG"]  # skip reasons, shared with the reading gate
IGNORED = "excluded by .gitignore/.ignore/.cadreignore"
TOOL_DIR = "vendored, tool or hidden directory"
LINKED_DIR = "symbolic link to a directory, not followed"
OUTSIDE = "symbolic link to outside the workspace roots"
DELETED = "deleted before it could be read"


def estimate_tokens(text: str) -> int:
    """A conservative token count for `text` (the core's characters-per-token estimate, rounded up)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def shown_path(workspace: Workspace, path: Path) -> str:
    """How a file is named to the model: relative to the first root, else absolute (both resolve back)."""
    if path.is_relative_to(workspace.primary):
        return path.relative_to(workspace.primary).as_posix()
    return str(path)


# --- resolving patterns ------------------------------------------------------------------------------


@dataclass
class _Collector:
    workspace: Workspace
    rules: dict[Path, IgnoreRules]
    files: set[Path] = field(default_factory=set)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    """Reason -> the paths skipped for it."""
    hits: int = 0
    """Files seen, kept or skipped."""

    def skip(self, path: Path, reason: str, *, is_dir: bool = False) -> None:
        self.hits += not is_dir
        shown = shown_path(self.workspace, path) + ("/" if is_dir else "")
        names = self.skipped.setdefault(reason, [])
        if shown not in names:
            names.append(shown)

    def ignored(self, path: Path, is_dir: bool) -> bool:
        for root, rules in self.rules.items():
            if path != root and path.is_relative_to(root):
                return rules.ignored(path.relative_to(root).as_posix(), is_dir)
        return False

    def consider(self, path: Path) -> None:
        """Keep one file or record why not; both a link and its target are checked."""
        try:
            real = self.workspace.resolve(path)
        except WorkspaceError:
            self.skip(path, OUTSIDE)
            return
        reason = self.file_problem(path, real)
        if reason:
            self.skip(path, reason)
        else:
            self.hits += 1
            self.files.add(real)

    def file_problem(self, path: Path, real: Path) -> str | None:
        if is_secret_path(self.workspace.relative(path)) or is_secret_path(self.workspace.relative(real)):
            return SENSITIVE
        if self.ignored(path, False) or self.ignored(real, False):
            return IGNORED
        return file_problem(real, max_bytes=DEFAULT_MAX_BYTES)

    def dir_problem(self, folder: Path) -> str | None:
        if folder.is_symlink():
            return LINKED_DIR
        if is_skipped_dir(folder):
            return TOOL_DIR
        return IGNORED if self.ignored(folder, True) else None

    def enter(self, folder: Path, covered: bool) -> bool:
        """Whether to walk into `folder`; a skip is noted when the pattern `covered` it."""
        reason = self.dir_problem(folder)
        if reason and covered:
            self.skip(folder, reason, is_dir=True)
        return reason is None

    def walk(self, top: Path, glob: pathspec.GitIgnoreSpec | None = None) -> None:
        """The files under `top` (those `glob` matches, relative to `top`); never follows a linked directory."""

        def matches(path: Path, suffix: str = "") -> bool:
            return glob is None or glob.match_file(path.relative_to(top).as_posix() + suffix)

        for folder, dirs, names in os.walk(top):
            here = Path(folder)
            dirs[:] = [d for d in sorted(dirs) if self.enter(here / d, matches(here / d, "/"))]
            for path in sorted(here / name for name in names):
                if matches(path):
                    self.consider(path)

    def notes(self) -> list[str]:
        return [_skip_note(reason, names) for reason, names in self.skipped.items()]


def _skip_note(reason: str, names: list[str]) -> str:
    if len(names) == 1:
        return f"{names[0]} skipped: {reason}"
    shown = ", ".join(names[:_NOTE_EXAMPLES])
    more = f" and {len(names) - _NOTE_EXAMPLES} more" if len(names) > _NOTE_EXAMPLES else ""
    return f"{len(names)} skipped ({reason}): {shown}{more}"


def _split_glob(pattern: str) -> tuple[str, str]:
    """(`base`, `rest`): the leading path without wildcards, and the wildcard part below it."""
    parts = PurePath(pattern).parts
    first = next(i for i, part in enumerate(parts) if not _GLOB_CHARS.isdisjoint(part))
    return str(PurePath(*parts[:first])) if first else ".", "/".join(parts[first:])


def _expand(collector: _Collector, pattern: str) -> str | None:
    """Add what `pattern` names to `collector`; a note when it names nothing that exists."""
    workspace = collector.workspace
    real = workspace.resolve(pattern)
    if real.exists() or _GLOB_CHARS.isdisjoint(pattern):  # `app/[id]/page.tsx` is a path when it exists
        if real.is_dir():
            collector.walk(real)
        elif real.exists():
            collector.consider(Path(os.path.normpath(workspace.primary / pattern)))
        else:
            return f"'{pattern}' does not exist"
        return None
    base, rest = _split_glob(pattern)
    top = workspace.resolve(base)
    if top.is_dir():
        collector.walk(top, pathspec.GitIgnoreSpec.from_lines(["/" + rest]))
    return None


def resolve_files(
    workspace: Workspace, patterns: list[str], *, max_files: int = DEFAULT_MAX_FILES
) -> tuple[list[Path], list[str]]:
    """The readable files that `patterns` (paths, directories or globs such as `src/**/*.py`) name.

    Relative patterns start at the first root. Returns (real paths sorted, notes on what was skipped and why).
    Raises `WorkspaceError` when a pattern leads outside the workspace roots.
    """
    collector = _Collector(workspace, {root: IgnoreRules(root) for root in workspace.roots})
    notes: list[str] = []
    for raw in patterns:
        pattern = raw.strip()
        if not pattern:
            continue
        before = collector.hits
        note = _expand(collector, pattern)
        if note or collector.hits == before:
            notes.append(note or f"'{pattern}' matched no files")
    notes += collector.notes()
    files = sorted(collector.files)
    if len(files) > max_files:
        notes.append(f"{len(files)} files matched; only the first {max_files} are read; pass narrower patterns")
        files = files[:max_files]
    return files, notes


# --- project instructions ----------------------------------------------------------------------------


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    marker = f"\n[... cut at {limit:,} characters]"
    return text[: limit - len(marker)] + marker


def project_instructions(workspace: Workspace) -> list[tuple[str, str]]:
    """(name, redacted text) of each agent instruction file at the first root, at most 20k characters each."""
    found: list[tuple[str, str]] = []
    seen: set[Path] = set()
    for name in INSTRUCTION_FILES:
        try:
            path = workspace.resolve(name)
            if path in seen:
                continue
            text = read_redacted(path, name=name)
        except (WorkspaceError, OSError):
            continue
        seen.add(path)
        if not text:
            continue
        found.append((name, _cap(text, INSTRUCTIONS_MAX_CHARS)))
    return found


# --- packing -----------------------------------------------------------------------------------------


@dataclass
class Packed:
    """Numbered, redacted file text that fits a token budget, and what was left out."""

    text: str
    included: list[str] = field(default_factory=list)
    omitted: list[tuple[str, str]] = field(default_factory=list)
    """(path, reason) for each file left out or truncated."""
    tokens: int = 0


@dataclass
class _Section:
    path: str
    lines: list[str]
    """Numbered lines, `   12 | code`."""

    @cached_property
    def full(self) -> str:
        if not self.lines:
            return f"=== {self.path} (empty) ===\n"
        return f"=== {self.path} (lines 1-{len(self.lines)}) ===\n" + _join(self.lines)

    def cut_header(self, count: int) -> str:
        return f"=== {self.path} (lines 1-{count} of {len(self.lines)}; truncated to fit) ===\n"

    def head(self, count: int) -> str:
        """The first `count` lines, under a header that says the file was cut."""
        return self.cut_header(count) + _join(self.lines[:count])

    def fit(self, limit: int) -> int:
        """How many leading lines fit in `limit` characters, header included (fewer than all of them)."""
        if not self.lines:
            return 0
        room = limit - len(self.cut_header(len(self.lines) - 1))  # the widest header a cut can have
        count = 0
        for line in self.lines:
            room -= len(line) + 1
            if room < 0:
                break
            count += 1
        return min(count, len(self.lines) - 1)


def _join(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def _split_lines(text: str) -> list[str]:
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def _numbered_lines(path: Path, name: str) -> list[str]:
    """The redacted text of `path` as numbered lines; raises `OSError` when it cannot be read."""
    lines = _split_lines(read_redacted(path, name=name))  # redaction keeps line breaks
    width = max(5, len(str(len(lines))))
    return [f"{n:>{width}} | {line}" for n, line in enumerate(lines, 1)]


def _read_sections(files: list[Path], workspace: Workspace, omitted: list[tuple[str, str]]) -> list[_Section]:
    sections = []
    for path in files:
        name = shown_path(workspace, path)
        try:
            sections.append(_Section(name, _numbered_lines(path, name)))
        except FileNotFoundError:
            omitted.append((name, DELETED))
        except OSError as exc:
            omitted.append((name, f"could not be read: {exc.strerror or exc}"))
    return sections


def pack(files: list[Path], workspace: Workspace, *, budget_tokens: int) -> Packed:
    """Number and redact `files`, keeping within `budget_tokens`.

    When they do not fit, whole files are left out largest first; a last file still too big is cut by lines.
    """
    omitted: list[tuple[str, str]] = []
    kept = _read_sections(files, workspace, omitted)
    limit = max(0, math.floor(budget_tokens * CHARS_PER_TOKEN))
    size = sum(len(s.full) + 1 for s in kept) - 1
    for largest in sorted(kept, key=lambda s: (-len(s.full), s.path)):
        if size <= limit or len(kept) == 1:
            break
        kept.remove(largest)
        size -= len(largest.full) + 1
        reason = f"left out to fit the token budget (about {estimate_tokens(largest.full):,} tokens)"
        omitted.append((largest.path, reason))
    parts = [s.full for s in kept]
    if kept and size > limit:
        only = kept.pop()
        count = only.fit(limit)
        if count:
            kept.append(only)
            parts = [only.head(count)]
            omitted.append((only.path, f"truncated to lines 1-{count:,} of {len(only.lines):,} to fit"))
        else:
            parts = []
            omitted.append((only.path, "left out: the budget is too small for even its first line"))
    text = "\n".join(parts)
    return Packed(text, [s.path for s in kept], omitted, estimate_tokens(text))
