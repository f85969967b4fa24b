"""Which files under a root get indexed: ignore files, size, binary, minified, vendored, secrets."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cadre_core.files import (
    DEFAULT_MAX_BYTES,
    IGNORE_FILES,
    SECRET_PATTERNS,
    SKIP_DIRS,
    IgnoreRules,
    is_secret_file,
    is_secret_path,
    is_skipped_dir,
    is_text_file,
    read_text,
)
from cadre_core.files import matches_name as _matches

__all__ = [
    "DEFAULT_MAX_BYTES",
    "IGNORE_FILES",
    "LANGUAGES",
    "SECRET_PATTERNS",
    "SKIP_DIRS",
    "SKIP_NAMES",
    "FileEntry",
    "IgnoreRules",
    "check_file",
    "is_secret_file",
    "is_text_file",
    "language_of",
    "read_text",
    "scan_dir",
    "walk",
]

SKIP_NAMES = ("*.min.js", "*.min.css", "*.map", "*.lock", "package-lock.json", "pnpm-lock.yaml", "*.pyc")
LANGUAGES = {
    ".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript",
    ".jsx": "javascript", ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx",
    ".go": "go", ".rs": "rust", ".java": "java", ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp",
    ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp", ".hxx": "cpp", ".rb": "ruby",
}  # fmt: skip


@dataclass(frozen=True)
class FileEntry:
    path: str
    """Relative to the root, with `/` separators."""
    size: int
    mtime_ns: int


def language_of(path: str) -> str | None:
    return LANGUAGES.get(os.path.splitext(path)[1].lower())


def scan_dir(root: Path, rel_dir: str, *, max_bytes: int, rules: IgnoreRules) -> tuple[list[FileEntry], list[str]]:
    """The indexable files directly in `rel_dir` and the sub-directories worth entering."""
    folder = root / rel_dir if rel_dir else root
    files: list[FileEntry] = []
    subdirs: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return files, subdirs
    for entry in entries:
        rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            continue
        if is_dir:
            if is_skipped_dir(Path(entry.path)) or rules.ignored(rel, True):
                continue
            subdirs.append(rel)
        elif (found := check_file(root, rel, max_bytes=max_bytes, rules=rules)) is not None:
            files.append(found)
    return files, sorted(subdirs)


def walk(
    root: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, rules: IgnoreRules | None = None, start: str = ""
) -> tuple[list[FileEntry], list[str]]:
    """Indexable files under `root` (or its sub-directory `start`) and every directory visited.

    Never enters a symlinked directory, so it cannot leave the root or loop.
    """
    root = root.resolve()
    rules = rules or IgnoreRules(root)
    files: list[FileEntry] = []
    dirs: list[str] = []
    pending = [start]
    while pending:
        rel_dir = pending.pop()
        dirs.append(rel_dir)
        found, subdirs = scan_dir(root, rel_dir, max_bytes=max_bytes, rules=rules)
        files.extend(found)
        pending.extend(reversed(subdirs))
    files.sort(key=lambda e: e.path)
    return files, dirs


def check_file(root: Path, rel: str, *, max_bytes: int, rules: IgnoreRules) -> FileEntry | None:
    """The entry for one file, or None when it must not be indexed."""
    name = rel.rsplit("/", 1)[-1]
    if is_secret_path(rel) or _matches(name, SKIP_NAMES) or rules.ignored(rel, False):
        return None
    full = root / rel
    try:
        st = full.lstat()
        if stat.S_ISLNK(st.st_mode):
            target = full.resolve()
            if not target.is_relative_to(root) or not target.is_file():
                return None
            st = target.stat()
        elif not stat.S_ISREG(st.st_mode):
            return None
    except (OSError, RuntimeError):
        return None
    if st.st_size > max_bytes or st.st_size == 0 or not is_text_file(full):
        return None
    return FileEntry(rel, st.st_size, st.st_mtime_ns)
