"""Which files are worth reading, and the one gate every reader opens a file through.

The gate (`read_text`, `read_lines`, `file_problem`) refuses secret files by name, folder and shape,
never opens anything but a regular file (a FIFO or device swapped in cannot block it), caps what it
reads, and `read_redacted` / `read_lines` hand back text already redacted.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from cadre_core.errors import WorkspaceError

if TYPE_CHECKING:
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
    ".env", ".env*", "*.env", "*.pem", "*.key", "*.p12", "*.pfx", "*.p8", "*.crt", "*.cer", "*.der", "*.jks",
    "*.keystore", "*.ppk", "*.kdbx", "*.keytab", "*.ovpn", "*.tfstate", "*.tfstate.*", "*.tfvars", "id_rsa*",
    "id_dsa*", "id_ecdsa*", "id_ed25519*", ".netrc", "_netrc", ".pgpass", ".npmrc", ".pypirc", ".git-credentials",
    ".dockercfg", ".htpasswd", ".s3cfg", ".boto", "credentials", "credentials.*", "client_secret*.json",
    "service-account*.json", "*-sa-key.json", "secrets.*", "*.secret", "*.secrets", "kubeconfig",
)  # fmt: skip
SECRET_DIRS = frozenset({".ssh", ".gnupg", ".aws", ".azure", ".docker", ".kube", "gcloud", ".password-store"})
"""Folders that hold credentials: nothing under them is read."""
DEFAULT_MAX_BYTES = 1_000_000
"""Whole-file reads stop here; line ranges of bigger files are read without loading them (`read_lines`)."""
MAX_SCAN_BYTES = 64_000_000
"""How far into a big file a line range may start."""
MAX_LINE_BYTES = 100_000
"""A longer line is cut (minified code, data on one line)."""
CONTEXT_LINES = 100
"""Lines read on each side of a range so a key body cut by the range is still recognised."""

SENSITIVE = "looks like a secret file"
NOT_FILE = "missing or not a regular file"
TOO_BIG = f"larger than {DEFAULT_MAX_BYTES // 1_000_000} MB"
BINARY = "binary or minified"
_MINIFIED_SUFFIXES = (".js", ".css", ".json", ".svg")


def matches_name(name: str, patterns: tuple[str, ...]) -> bool:
    """True when the file name matches one of the glob `patterns`, ignoring case."""
    lower = name.lower()
    return any(fnmatch.fnmatchcase(lower, p) for p in patterns)


def is_secret_file(name: str) -> bool:
    """True for a secret file's name: `.env*`, keys, certificates, credential files and the like."""
    return matches_name(name, SECRET_PATTERNS)


def is_secret_path(path: Path | str) -> bool:
    """A secret file's name, or any file under a credentials folder such as `.ssh` or `.aws`."""
    parts = Path(path).parts
    return bool(parts) and (is_secret_file(parts[-1]) or any(p.lower() in SECRET_DIRS for p in parts[:-1]))


def is_skipped_dir(path: Path) -> bool:
    """Vendored, tool, hidden (except `.github`) and virtualenv directories, never worth entering."""
    name = path.name
    if name in SKIP_DIRS or (name.startswith(".") and name != ".github"):
        return True
    return os.path.isfile(os.path.join(path, "pyvenv.cfg"))


def _spec(lines: list[str]) -> pathspec.GitIgnoreSpec:
    """A gitignore spec; lines git itself would reject (e.g. a lone `!`) are skipped, not fatal."""
    import pathspec  # only where an ignore file exists: a warm search on an unchanged tree never needs it

    try:
        return pathspec.GitIgnoreSpec.from_lines(lines)
    except Exception:
        return pathspec.GitIgnoreSpec.from_lines([line for line in lines if _valid_pattern(line)])


def _valid_pattern(line: str) -> bool:
    import pathspec

    try:
        pathspec.GitIgnoreSpec.from_lines([line])
    except Exception:
        return False
    return True


class IgnoreRules:
    """`.gitignore`, `.ignore` and `.cadreignore` files, each applied below its own directory."""

    def __init__(self, root: Path):
        self.root = root
        self._specs: dict[str, pathspec.GitIgnoreSpec | None] = {}

    def spec_for(self, rel_dir: str) -> pathspec.GitIgnoreSpec | None:
        if rel_dir not in self._specs:
            lines: list[str] = []
            folder = self.root / rel_dir if rel_dir else self.root
            for name in IGNORE_FILES:
                try:
                    lines += read_text(folder / name).splitlines()  # through the gate: a FIFO cannot block
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


class UnreadableFileError(WorkspaceError, OSError):
    """A file the gate will not read; `reason` says why (one of the constants above, or an OS error)."""

    def __init__(self, path: Path | str, reason: str):
        super().__init__(f"'{Path(path).name}' is not readable here: {reason}")
        self.reason = self.strerror = reason


def looks_like_secret_file(text: str) -> bool:
    """The start of a key or certificate file, or a cloud credential JSON, whatever the file's name."""
    return _secret_shape(text[:8192].encode("utf-8", errors="replace"))


def _secret_shape(head: bytes) -> bool:
    start = head.lstrip()[:200]
    if start.startswith(b"-----BEGIN ") or start.startswith(b"PuTTY-User-Key-File"):
        return True
    is_json = start.startswith(b"{")
    return is_json and b'"private_key"' in head and (b'"service_account"' in head or b'"client_email"' in head)


def _open_regular(path: Path) -> tuple[int, int]:
    """(fd, size) of a regular file. Checked before opening (a FIFO or device is never opened), opened
    non-blocking and checked again, so one swapped in meanwhile cannot block or be read."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise UnreadableFileError(path, NOT_FILE)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except UnreadableFileError:
        raise
    except OSError as exc:
        raise UnreadableFileError(path, exc.strerror or NOT_FILE) from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise UnreadableFileError(path, NOT_FILE)
    return fd, info.st_size


def _checked(path: Path | str) -> Path:
    """`path`, unless its name or its link target's name is a secret file's (folders are the caller's to
    check, relative to its workspace: `is_secret_path`)."""
    path = Path(path)
    if is_secret_file(path.name) or (path.is_symlink() and is_secret_file(path.resolve().name)):
        raise UnreadableFileError(path, SENSITIVE)
    return path


def file_problem(path: Path | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> str | None:
    """Why the gate would not read `path` whole (SENSITIVE, NOT_FILE, TOO_BIG, BINARY), or None."""
    try:
        read_head(path, max_bytes=max_bytes)
    except FileNotFoundError:
        return NOT_FILE
    except UnreadableFileError as exc:
        return exc.reason
    return None


def read_head(path: Path | str, *, max_bytes: int | None = DEFAULT_MAX_BYTES, size: int = 8192) -> bytes:
    """The first `size` bytes of a readable text file; raises `UnreadableFileError` as `read_text` would."""
    path = _checked(path)
    fd, total = _open_regular(path)
    with os.fdopen(fd, "rb") as f:
        head = f.read(size)
    _check_head(path, head, total, max_bytes)
    return head


def _check_head(path: Path, head: bytes, size: int, max_bytes: int | None) -> None:
    if _secret_shape(head):
        raise UnreadableFileError(path, SENSITIVE)
    if max_bytes is not None and size > max_bytes:
        raise UnreadableFileError(path, f"larger than {max_bytes / 1_000_000:g} MB")
    if b"\x00" in head[:8192]:
        raise UnreadableFileError(path, BINARY)
    if size > 20_000 and path.suffix in _MINIFIED_SUFFIXES:
        lines = head[:8192].count(b"\n") + 1
        if len(head[:8192]) / lines > 300:  # minified
            raise UnreadableFileError(path, BINARY)


def is_text_file(path: Path, size: int | None = None) -> bool:
    """False for binaries (a NUL byte early on), minified web assets, secret and non-regular files."""
    try:
        read_head(path, max_bytes=None)
    except OSError:
        return False
    return True


def read_text(path: Path | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The text of one file through the gate; bytes that are not UTF-8 are replaced.

    Raises `UnreadableFileError` (an `OSError` and a `WorkspaceError`) for a secret file (by name, folder
    or content), anything but a regular file, a file over `max_bytes`, or a binary one."""
    path = _checked(path)
    fd, size = _open_regular(path)
    with os.fdopen(fd, "rb") as f:
        data = f.read(max_bytes + 1)
    _check_head(path, data[:8192], max(size, len(data)), max_bytes)
    return data.decode("utf-8", errors="replace")


def read_bytes(path: Path | str, *, max_bytes: int) -> bytes:
    """The bytes of one binary file (an image, a PDF) through the gate: never a secret file (by name or
    content) nor anything but a regular file; raises `UnreadableFileError` over `max_bytes`."""
    path = _checked(path)
    fd, size = _open_regular(path)
    with os.fdopen(fd, "rb") as f:
        data = f.read(max_bytes + 1)
    if _secret_shape(data[:8192]):
        raise UnreadableFileError(path, SENSITIVE)
    if max(size, len(data)) > max_bytes:
        raise UnreadableFileError(path, f"larger than {max_bytes / 1_000_000:g} MB")
    return data


def read_redacted(path: Path | str, *, max_bytes: int = DEFAULT_MAX_BYTES, name: str | None = None) -> str:
    """`read_text` with secrets redacted (by the rules for `name`, default the file's name)."""
    from cadre_core.redact import redact

    path = Path(path)
    return redact(read_text(path, max_bytes=max_bytes), filename=name or path.name)[0]


def read_lines(
    path: Path | str, start: int = 1, end: int | None = None, *, max_lines: int = 400
) -> tuple[list[str], int, int | None]:
    """Redacted lines `start..end` (1-based, at most `max_lines`) of a file: (lines, first, total or None).

    A file up to `DEFAULT_MAX_BYTES` is read and redacted whole. A bigger one is streamed up to the range
    (at most `MAX_SCAN_BYTES` in) and only the range and `CONTEXT_LINES` around it are kept and redacted,
    so its total is None when the end of the file was not reached."""
    path = _checked(path)
    start = max(1, int(start or 1))
    last = start + max_lines - 1 if end is None else min(max(start, int(end)), start + max_lines - 1)
    fd, size = _open_regular(path)
    total: int | None
    with os.fdopen(fd, "rb") as f:
        head = f.read(8192)
        _check_head(path, head, size, None)
        f.seek(0)
        if size <= DEFAULT_MAX_BYTES:
            lines = _split(f.read(DEFAULT_MAX_BYTES + 1).decode("utf-8", errors="replace"))
            first, total = 1, len(lines)
        else:
            first, lines, total = _window(f, path, start, last)
    if total is not None and start > total:
        return [], start, total
    return _redact_lines(lines, path.name)[start - first : last - first + 1], start, total


def _window(f: BinaryIO, path: Path, start: int, last: int) -> tuple[int, list[str], int | None]:
    """(first line number, lines) around `start..last` of a big file, and its total when the end was reached.
    Lines before the window are skipped a megabyte at a time, only counted."""
    first = max(1, start - CONTEXT_LINES)
    number = 0  # lines passed
    while number < first - 1:
        at = f.tell()
        block = f.read(1 << 20)
        if not block:
            return first, [], number
        count = block.count(b"\n")
        if number + count >= first - 1:
            end = -1
            for _ in range(first - 1 - number):
                end = block.index(b"\n", end + 1)
            f.seek(at + end + 1)
            number = first - 1
        else:
            number += count
            if f.tell() > MAX_SCAN_BYTES:
                raise UnreadableFileError(path, f"line {start} is beyond the first {MAX_SCAN_BYTES // 1_000_000} MB")
    kept: list[str] = []
    while number < last + CONTEXT_LINES:
        raw = f.readline(MAX_LINE_BYTES)
        if not raw:
            return first, kept, number
        if not raw.endswith(b"\n"):  # a line over the cap: keep its start, skip the rest
            while (more := f.readline(MAX_LINE_BYTES)) and not more.endswith(b"\n"):
                pass
        number += 1
        kept.append(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
    return first, kept, None if f.read(1) else number


def _split(text: str) -> list[str]:
    lines = text.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def _redact_lines(lines: list[str], name: str) -> list[str]:
    from cadre_core.redact import redact

    return redact("\n".join(lines), filename=name)[0].split("\n")  # redaction keeps every line break
