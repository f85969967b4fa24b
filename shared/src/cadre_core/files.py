"""Which files are worth reading: ignore files, vendored and tool directories, secrets, binaries, minified."""

from __future__ import annotations

import fnmatch
import os
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
DEFAULT_MAX_BYTES = 1_000_000
_MINIFIED_SUFFIXES = (".js", ".css", ".json", ".svg")


def matches_name(name: str, patterns: tuple[str, ...]) -> bool:
    """True when the file name matches one of the glob `patterns`, ignoring case."""
    lower = name.lower()
    return any(fnmatch.fnmatchcase(lower, p) for p in patterns)


def is_secret_file(name: str) -> bool:
    return matches_name(name, SECRET_PATTERNS)


def is_skipped_dir(path: Path) -> bool:
    """Vendored, tool, hidden (except `.github`) and virtualenv directories, never worth entering."""
    name = path.name
    if name in SKIP_DIRS or (name.startswith(".") and name != ".github"):
        return True
    return os.path.isfile(os.path.join(path, "pyvenv.cfg"))


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


def is_text_file(path: Path, size: int) -> bool:
    """False for binaries (a NUL byte early on) and minified web assets; unreadable files are not text."""
    try:
        with path.open("rb") as f:
            head = f.read(8192)
    except OSError:
        return False
    if b"\x00" in head:
        return False
    if size > 20_000 and path.suffix in _MINIFIED_SUFFIXES:
        lines = head.count(b"\n") + 1
        if len(head) / lines > 300:  # minified
            return False
    return True


def read_text(path: Path) -> str:
    """File text; bytes that are not UTF-8 are replaced, never an error."""
    return path.read_bytes().decode("utf-8", errors="replace")
