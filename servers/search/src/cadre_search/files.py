"""Which files under a root get indexed: ignore files, size, binary, minified, vendored, secrets."""

from __future__ import annotations

import fnmatch
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pathspec

IGNORE_FILES = (".gitignore", ".ignore", ".cadreignore")
SKIP_DIRS = frozenset(
    {
        ".git", ".hg", ".svn", ".jj", "node_modules", "bower_components", "__pycache__", ".venv", "venv",
        ".tox", ".nox", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".eggs", "site-packages",
        "vendor", "third_party", "third-party", ".idea", ".vscode", ".next", ".cache",
    }
)  # fmt: skip
SECRET_PATTERNS = (
    ".env", ".env.*", "*.pem", "*.key", "*.p12", "*.pfx", "*.crt", "*.cer", "*.der", "*.jks", "*.keystore",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", ".netrc", ".pgpass", "credentials.json", "*.kdbx",
    "secrets.yaml", "secrets.yml", ".htpasswd",
)  # fmt: skip
SKIP_NAMES = ("*.min.js", "*.min.css", "*.map", "*.lock", "package-lock.json", "pnpm-lock.yaml", "*.pyc")
LANGUAGES = {
    ".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript",
    ".jsx": "javascript", ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx",
    ".go": "go", ".rs": "rust", ".java": "java", ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp",
    ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp", ".hxx": "cpp", ".rb": "ruby",
}  # fmt: skip
DEFAULT_MAX_BYTES = 1_000_000


@dataclass(frozen=True)
class FileEntry:
    path: str
    """Relative to the root, with `/` separators."""
    size: int
    mtime_ns: int


def language_of(path: str) -> str | None:
    return LANGUAGES.get(os.path.splitext(path)[1].lower())


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    lower = name.lower()
    return any(fnmatch.fnmatchcase(lower, p) for p in patterns)


def is_secret_file(name: str) -> bool:
    return _matches(name, SECRET_PATTERNS)


def _spec(lines: list[str]) -> pathspec.PathSpec:
    """A gitignore spec; lines git itself would reject (e.g. a lone `!`) are skipped, not fatal."""
    try:
        return pathspec.GitIgnoreSpec.from_lines(lines)
    except Exception:
        return pathspec.GitIgnoreSpec.from_lines([line for line in lines if _valid_pattern(line)])


def _valid_pattern(line: str) -> bool:
    try:
        pathspec.GitIgnoreSpec.from_lines([line])
    except Exception:
        return False
    return True


class IgnoreRules:
    """`.gitignore`, `.ignore` and `.cadreignore` files, each applied below its own directory."""

    def __init__(self, root: Path):
        self.root = root
        self._specs: dict[str, pathspec.PathSpec | None] = {}

    def spec_for(self, rel_dir: str) -> pathspec.PathSpec | None:
        if rel_dir not in self._specs:
            lines: list[str] = []
            folder = self.root / rel_dir if rel_dir else self.root
            for name in IGNORE_FILES:
                try:
                    lines += (folder / name).read_text("utf-8", errors="replace").splitlines()
                except OSError:
                    continue
            self._specs[rel_dir] = _spec(lines) if lines else None
        return self._specs[rel_dir]

    def ignored(self, rel_path: str, is_dir: bool) -> bool:
        """True when an ignore file in any parent directory excludes `rel_path`."""
        segments = rel_path.split("/")
        for depth in range(len(segments)):
            base = "/".join(segments[:depth])
            spec = self.spec_for(base)
            if spec is None:
                continue
            sub = "/".join(segments[depth:]) + ("/" if is_dir else "")
            if spec.match_file(sub):
                return True
        return False


def _is_text(path: Path, size: int) -> bool:
    try:
        with path.open("rb") as f:
            head = f.read(8192)
    except OSError:
        return False
    if b"\x00" in head:
        return False
    if size > 20_000 and path.suffix in (".js", ".css", ".json", ".svg"):
        lines = head.count(b"\n") + 1
        if len(head) / lines > 300:  # minified
            return False
    return True


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
            name = entry.name
            if name in SKIP_DIRS or (name.startswith(".") and name != ".github"):
                continue
            if os.path.isfile(os.path.join(entry.path, "pyvenv.cfg")) or rules.ignored(rel, True):
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
    if is_secret_file(name) or _matches(name, SKIP_NAMES) or rules.ignored(rel, False):
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
    if st.st_size > max_bytes or st.st_size == 0 or not _is_text(full, st.st_size):
        return None
    return FileEntry(rel, st.st_size, st.st_mtime_ns)


def read_text(path: Path) -> str:
    """File text; bytes that are not UTF-8 are replaced, never an error."""
    return path.read_bytes().decode("utf-8", errors="replace")
