"""A speed-benchmark corpus: real source files from one commit of a git repository, on disk.

Nothing here fetches anything or writes into this repository: the caller hands over a git
directory (bare or not) and a ref, and the chosen files are written into a temp dir only.

Selection is deterministic. The candidates are the regular files of the ref's tree that the
search engine would index (its skip rules for directories, names and secret files), that are
text (no NUL byte in the first 8 KiB, not minified) and between 1 byte and 1 MB. They are taken
in the order of sha256(path), which scatters picks evenly across the tree; a file is accepted
while the running total stays within the byte budget for that many files (target average size
times files so far, plus a 1 MB cushion), until the file target is reached. When the tree has
too few files, or too few small enough ones, the skipped files are added in the same order
until the file target is met, so the result is the closest combination the tree allows.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from cadre_search.files import SKIP_DIRS, SKIP_NAMES, _matches, is_secret_file

MAX_FILE_BYTES = 1_000_000
_MINIFIED_EXTS = (".js", ".css", ".json", ".svg")


@dataclass
class Blob:
    path: str
    size: int
    sha: str


@dataclass
class Corpus:
    root: Path
    git_dir: str
    ref: str
    commit: str
    files: list[str] = field(default_factory=list)
    bytes: int = 0
    candidates: int = 0
    candidate_bytes: int = 0
    tree_files: int = 0
    tree_bytes: int = 0

    def info(self) -> dict:
        return {
            "git_dir": self.git_dir,
            "ref": self.ref,
            "commit": self.commit,
            "files": len(self.files),
            "bytes": self.bytes,
            "mb": round(self.bytes / 1e6, 2),
            "candidate_files": self.candidates,
            "candidate_bytes": self.candidate_bytes,
            "tree_files": self.tree_files,
            "tree_bytes": self.tree_bytes,
            "extensions": _ext_counts(self.files),
        }


def git(git_dir: Path, *args: str) -> bytes:
    return subprocess.run(["git", f"--git-dir={git_dir}", *args], check=True, capture_output=True).stdout


def resolve_git_dir(path: Path) -> Path:
    """`path` itself when it is a bare repository, else its `.git`."""
    path = path.expanduser().resolve()
    if (path / ".git").exists():
        return path / ".git"
    if (path / "HEAD").is_file() and (path / "objects").is_dir():
        return path
    raise SystemExit(f"{path} is not a git directory; pass a bare repository or a checkout")


def tree_blobs(git_dir: Path, commit: str) -> list[Blob]:
    """Regular files (not symlinks or submodules) of the commit's tree, sorted by path."""
    out = []
    for record in git(git_dir, "ls-tree", "-r", "-l", "-z", commit).split(b"\0"):
        if not record:
            continue
        meta, path = record.split(b"\t", 1)
        mode, kind, sha, size = meta.split()
        if kind != b"blob" or mode not in (b"100644", b"100755"):
            continue
        out.append(Blob(path.decode("utf-8", errors="surrogateescape"), int(size), sha.decode()))
    return sorted(out, key=lambda b: b.path)


def indexable_path(path: str) -> bool:
    """What the engine's walker would enter and keep, judged on the path alone."""
    parts = PurePosixPath(path).parts
    for folder in parts[:-1]:
        if folder in SKIP_DIRS or (folder.startswith(".") and folder != ".github"):
            return False
    name = parts[-1]
    return not (is_secret_file(name) or _matches(name, SKIP_NAMES))


def is_text(path: str, data: bytes) -> bool:
    head = data[:8192]
    if b"\0" in head:
        return False
    if len(data) > 20_000 and path.endswith(_MINIFIED_EXTS):
        return len(head) / (head.count(b"\n") + 1) <= 300
    return True


def read_blobs(git_dir: Path, blobs: list[Blob]) -> dict[str, bytes]:
    """The contents of `blobs` (by path), in one `git cat-file --batch`."""
    request = "".join(f"{b.sha}\n" for b in blobs).encode()
    raw = subprocess.run(
        ["git", f"--git-dir={git_dir}", "cat-file", "--batch"], input=request, check=True, capture_output=True
    ).stdout
    out: dict[str, bytes] = {}
    pos = 0
    for blob in blobs:
        header_end = raw.index(b"\n", pos)
        sha, kind, size = raw[pos:header_end].split()
        if sha.decode() != blob.sha or kind != b"blob":
            raise RuntimeError(f"git cat-file answered {sha!r} {kind!r} for {blob.path}")
        start = header_end + 1
        out[blob.path] = raw[start : start + int(size)]
        pos = start + int(size) + 1
    return out


def _order(path: str) -> str:
    return hashlib.sha256(path.encode("utf-8", errors="surrogateescape")).hexdigest()


def select(candidates: list[Blob], target_files: int, target_bytes: int) -> list[Blob]:
    """About `target_files` files totalling about `target_bytes`; see the module docstring."""
    ordered = sorted(candidates, key=lambda b: _order(b.path))
    average = target_bytes / max(1, target_files)
    chosen: list[Blob] = []
    skipped: list[Blob] = []
    total = 0
    for blob in ordered:
        if len(chosen) >= target_files:
            break
        if total + blob.size <= average * (len(chosen) + 1) + 1_000_000:
            chosen.append(blob)
            total += blob.size
        else:
            skipped.append(blob)
    for blob in skipped:
        if len(chosen) >= target_files:
            break
        chosen.append(blob)
    return sorted(chosen, key=lambda b: b.path)


def materialize(git_dir: Path, ref: str, dest: Path, *, target_files: int, target_bytes: int) -> Corpus:
    """Write the selected files of `ref` under `dest` and describe what was written."""
    commit = git(git_dir, "rev-parse", "--verify", f"{ref}^{{commit}}").decode().strip()
    blobs = tree_blobs(git_dir, commit)
    corpus = Corpus(dest, str(git_dir), ref, commit, tree_files=len(blobs), tree_bytes=sum(b.size for b in blobs))
    sized = [b for b in blobs if 0 < b.size < MAX_FILE_BYTES and indexable_path(b.path)]
    contents = read_blobs(git_dir, sized)
    candidates = [b for b in sized if is_text(b.path, contents[b.path])]
    corpus.candidates = len(candidates)
    corpus.candidate_bytes = sum(b.size for b in candidates)
    chosen = select(candidates, target_files, target_bytes)
    for blob in chosen:
        target = dest / blob.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(contents[blob.path])
    corpus.files = [b.path for b in chosen]
    corpus.bytes = sum(b.size for b in chosen)
    return corpus


def _ext_counts(paths: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in paths:
        ext = PurePosixPath(path).suffix.lower() or "(none)"
        counts[ext] = counts.get(ext, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:12])
