"""Where the benchmark's source repositories live, and how a commit's tree is laid out on disk.

Nothing here fetches anything: the user hands over git directories (bare or not) that
already hold the history, and trees are checked out into temporary directories only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path, PurePosixPath

# The public repositories the benchmark is derived from, in a fixed order.
REPOS = ("pallets/click", "encode/httpx", "psf/black", "python-attrs/attrs", "Textualize/rich")

# Top-level files and directories that are tooling, docs or examples rather than the library.
_NON_SOURCE_DIRS = frozenset(
    {
        ".github",
        "action",
        "benchmarks",
        "benchmark",
        "doc",
        "docs",
        "example",
        "examples",
        "ext",
        "gallery",
        "profiling",
        "scripts",
        "tools",
    }
)
_NON_SOURCE_FILES = frozenset({"setup.py", "noxfile.py", "tasks.py", "fabfile.py", "conftest.py"})


def is_test_path(path: str) -> bool:
    """True for test code: anything under a `tests`/`test`/`testsuite` dir, `test_*.py`, `*_test.py`, `conftest.py`."""
    p = PurePosixPath(path)
    if any(part in ("tests", "test", "testsuite") for part in p.parts[:-1]):
        return True
    name = p.name
    return name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"


def is_source_path(path: str) -> bool:
    """True for a non-test Python source file of the library itself (not docs, examples or tooling)."""
    p = PurePosixPath(path)
    if p.suffix != ".py" or is_test_path(path):
        return False
    if len(p.parts) > 1 and p.parts[0] in _NON_SOURCE_DIRS:
        return False
    return not (len(p.parts) == 1 and p.name in _NON_SOURCE_FILES)


def _git_dir_of(path: Path) -> Path | None:
    if (path / ".git").is_dir():
        return path / ".git"
    if (path / "HEAD").is_file() and (path / "objects").is_dir():
        return path
    return None


def resolve_git_dir(repos_dir: Path | None, repo: str, overrides: dict[str, Path] | None = None) -> Path:
    """The git directory for `repo` ("owner/name").

    Looks in `overrides` first (owner/name -> path), then under `repos_dir` for, in order:
    `owner+name/repo` (the /work/.mirror layout), `owner+name`, `owner+name.git`, `owner/name`,
    `owner/name.git`, `name`, `name.git`. Each may be a bare git dir or a checkout with `.git`.
    """
    owner, name = repo.split("/")
    candidates: list[Path] = []
    if overrides and repo in overrides:
        candidates.append(overrides[repo])
    if repos_dir is not None:
        flat = f"{owner}+{name}"
        for rel in (f"{flat}/repo", flat, f"{flat}.git", f"{owner}/{name}", f"{owner}/{name}.git", name, f"{name}.git"):
            candidates.append(repos_dir / rel)
    for cand in candidates:
        found = _git_dir_of(cand)
        if found is not None:
            return found
    tried = ", ".join(str(c) for c in candidates) or "(no --repos-dir given)"
    raise FileNotFoundError(f"no git directory for {repo}; tried {tried}")


def git(git_dir: Path, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    """Run `git --git-dir=<git_dir> <args>` and return its stdout (text, errors replaced)."""
    proc = subprocess.run(
        ["git", f"--git-dir={git_dir}", *args],
        capture_output=True,
        env=env,
        check=False,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout.decode("utf-8", errors="replace")


def materialize(git_dir: Path, commit: str, dest: Path) -> Path:
    """Check out the full tree of `commit` into the new directory `dest` (no `.git` inside).

    Uses a throw-away index, so the git directory is only read; unlike `git archive`,
    `export-ignore` attributes do not drop files.
    """
    dest.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="cadre-idx-") as idx:
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(idx) / "index")}
        try:
            git(git_dir, f"--work-tree={dest}", "read-tree", commit, env=env)
            git(git_dir, f"--work-tree={dest}", "checkout-index", "--all", "--force", env=env)
        except Exception:
            shutil.rmtree(dest, ignore_errors=True)
            raise
    return dest


def jsonl_files(paths: list[Path]) -> list[Path]:
    """The `.jsonl` files named, or found directly (sorted) in the directories named."""
    return [f for p in paths for f in (sorted(p.glob("*.jsonl")) if p.is_dir() else [p])]


def parse_repo_map(items: list[str]) -> dict[str, Path]:
    """Parse `owner/name=PATH` (or `owner+name=PATH`) overrides."""
    out: dict[str, Path] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not value:
            raise ValueError(f"--repo-map expects owner/name=PATH, got {item!r}")
        out[key.replace("+", "/", 1)] = Path(value).expanduser()
    return out
