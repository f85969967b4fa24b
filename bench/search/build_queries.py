"""Derive the file-localization queries in bench/search/queries.jsonl from the repos' git history.

This only reads git directories the user already has (see `--repos-dir`); it never fetches
anything and writes nothing but the derived queries and labels. The selection rules are in
bench/search/README.md; in short:

* commit kind: non-merge commits reachable from HEAD whose subject says fix/bug or whose
  message says "fixes #N" (or holds a traceback); that change 1-5 non-test library `.py` files,
  all of which exist in the parent; whose change to those files is more than docstrings,
  comments and type annotations (compared on the AST); not docs/CI/lint/typing/test chores by
  subject. Query = the cleaned commit message. Gold = those files. Tree = the parent.
  A seeded sample of `--per-repo` of them, kept in history order.
* traceback kind: (a) those commit messages that contain a Python traceback; (b) with
  `--python`, the tests the fix commit added (for black: the test-case files it added) are run
  against the *parent* tree, and when one crashes inside the library with a traceback that
  passes through a gold file or calls a function a gold file defines, that real traceback
  becomes a bug report: commit subject, the test as a reproducer, and the
  traceback with site-packages-style paths. At most `--tb-per-repo` per repo (seeded).

Running (b) executes those projects' tests: use a throw-away virtualenv that has pytest and
their test dependencies (see README.md); the trees live in a temp dir and are deleted.

    .venv/bin/python bench/search/build_queries.py --repos-dir /work/.mirror \
        [--python /tmp/bench-venv/bin/python] [--python-map python-attrs/attrs=/tmp/venv2/bin/python] \
        [--per-repo 50] [--tb-per-repo 20]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from _repos import REPOS, git, is_source_path, is_test_path, materialize, parse_repo_map, resolve_git_dir

HERE = Path(__file__).resolve().parent
PLUGIN = HERE / "_capture_plugin.py"
SEED = "cadre-search-bench-v1"
MAX_GOLD = 5
MAX_QUERY_CHARS = 4000

_FIX_SUBJECT = re.compile(r"^\W*(fix(e[sd]|ing)?|bug-?fix(es)?|hotfix)\b|\bbugs?\b", re.IGNORECASE)
_FIX_REF = re.compile(
    r"\b(fix(e[sd])?|close[sd]?|resolve[sd]?)\s*:?\s*(#|gh-|https://github\.com/\S+/issues/)\d+", re.IGNORECASE
)
# Subjects of chores dressed as fixes: docs, CI, lint, typing, tests, releases.
_CHORE_SUBJECT = re.compile(
    r"\b(typos?|docs?|documentation|docstrings?|changelog|changes\.rst|readme|spelling|grammar|lint(ing|er)?|"
    r"ruff|flake8|pylint|mypy|pyright|pre-commit|pre-commit\.ci|coverage|typing|type[- ]hints?|stubs?|typevars?|"
    r"type[- ]check(s|ing|er)?|review|ci|github actions?|workflows?|release|version|bump|merge|"
    r"flaky|tests?|test suite|examples?)\b",
    re.IGNORECASE,
)
_TRAILER = re.compile(r"^\s*[A-Za-z-]+-by:\s", re.IGNORECASE)
_NOISE_LINE = re.compile(
    r"^\s*(\*\s*)?(\[pre-commit\.ci\].*|for more information, see https://pre-commit\.ci|"
    r"merge (remote-tracking )?branch .*|merge pull request .*|<[^<>\s]+@[^<>\s]+>|"
    r"(add|added|update|updated)?\s*(pr )?(news ?fragments?|changelog( entry)?)|"
    r"[*-]\s+.*\b(news ?fragments?|changelog|lint(er|ing)?|typos?|pre-commit|mypy|review)\b.*)\s*$",
    re.IGNORECASE,
)
_TRACEBACK = "Traceback (most recent call last)"
_STOP = {"fix", "fixes", "fixed", "fixing", "bug", "issue", "the", "and", "for", "with", "when", "from", "that"}


@dataclass
class Candidate:
    repo: str
    commit: str
    parent: str
    time: int
    subject: str
    message: str
    gold: list[str]
    changed: list[tuple[str, str]] = field(default_factory=list)  # (status, path) of every changed file


# ---------------------------------------------------------------------------------------------
# Commit selection
# ---------------------------------------------------------------------------------------------


def clean_message(message: str) -> str:
    """The commit message without trailers, pre-commit.ci noise and merge lines; blank runs collapsed."""
    lines = [ln.rstrip() for ln in message.strip().splitlines()]
    kept = [ln for ln in lines if not _TRAILER.match(ln) and not _NOISE_LINE.match(ln)]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()
    if len(text) > MAX_QUERY_CHARS:
        text = text[:MAX_QUERY_CHARS].rsplit("\n", 1)[0].rstrip()
    return text


def is_fix(subject: str, message: str) -> bool:
    return bool(_FIX_SUBJECT.search(subject) or _FIX_REF.search(message))


def is_chore(subject: str) -> bool:
    return bool(_CHORE_SUBJECT.search(subject))


def has_content(message: str) -> bool:
    """At least three distinct words of 3+ letters beyond fix/bug boilerplate."""
    words = {w for w in re.findall(r"[a-z]{3,}", message.lower()) if w not in _STOP}
    return len(words) >= 3


class _Normalize(ast.NodeTransformer):
    """Strip what cannot change behaviour: docstrings, annotations, typing-only imports and blocks."""

    _TYPING_MODULES = frozenset({"typing", "typing_extensions", "collections.abc", "__future__", "types"})

    def _strip_docstring(self, node: Any) -> Any:
        body = node.body
        first = body[0] if body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            node.body = body[1:] or [ast.Pass()]
        return node

    def visit_Module(self, node: ast.Module) -> Any:
        return self._strip_docstring(self.generic_visit(node))

    def visit_ClassDef(self, node: ast.ClassDef) -> Any:
        return self._strip_docstring(self.generic_visit(node))

    def visit_FunctionDef(self, node: ast.FunctionDef) -> Any:
        node.returns = None
        return self._strip_docstring(self.generic_visit(node))

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> Any:
        node.returns = None
        return self._strip_docstring(self.generic_visit(node))

    def visit_arg(self, node: ast.arg) -> Any:
        node.annotation = None
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> Any:
        # Keep the target (attrs fields are declared by annotation) but not the annotation itself.
        node.annotation = ast.Constant(value=None)
        return self.generic_visit(node)

    def visit_If(self, node: ast.If) -> Any:
        test = ast.unparse(node.test)
        if test in ("TYPE_CHECKING", "typing.TYPE_CHECKING", "t.TYPE_CHECKING"):
            return None
        return self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> Any:
        return None if node.module in self._TYPING_MODULES else node

    def visit_Import(self, node: ast.Import) -> Any:
        names = [a for a in node.names if a.name not in self._TYPING_MODULES]
        if not names:
            return None
        node.names = names
        return node


def _normalized_dump(source: str) -> str | None:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    return ast.dump(_Normalize().visit(tree), include_attributes=False)


def changes_code(git_dir: Path, parent: str, commit: str, path: str) -> bool:
    """True when `path` changes behaviour between parent and commit (not only docs/annotations/comments)."""
    before = git(git_dir, "show", f"{parent}:{path}", check=False)
    after = git(git_dir, "show", f"{commit}:{path}", check=False)
    a, b = _normalized_dump(before), _normalized_dump(after)
    if a is None or b is None:  # e.g. Python 2 syntax in old history: fall back to the raw text
        strip = [
            [ln.strip() for ln in src.splitlines() if ln.strip() and not ln.strip().startswith("#")]
            for src in (before, after)
        ]
        return strip[0] != strip[1]
    return a != b


def list_commits(git_dir: Path, rev: str) -> Iterable[tuple[str, list[str], int, str]]:
    """(hash, parents, commit time, raw message) for every commit reachable from `rev`, newest first."""
    out = git(git_dir, "log", rev, "--format=%H%x00%P%x00%ct%x00%B%x1e")
    for record in out.split("\x1e"):
        record = record.strip("\n")
        if not record:
            continue
        sha, parents, ts, body = record.split("\x00", 3)
        yield sha, parents.split(), int(ts), body


def find_candidates(repo: str, git_dir: Path, rev: str) -> list[Candidate]:
    found: list[Candidate] = []
    seen_messages: set[str] = set()
    commits = sorted(list_commits(git_dir, rev), key=lambda c: (c[2], c[0]))  # oldest first
    for sha, parents, ts, raw in commits:
        if len(parents) != 1:
            continue  # merges and roots
        message = clean_message(raw)
        subject = message.splitlines()[0] if message else ""
        if not (is_fix(subject, message) or _TRACEBACK in message) or is_chore(subject) or not has_content(message):
            continue
        key = re.sub(r"\s*\(#\d+\)\s*$", "", message).lower()
        if key in seen_messages:
            continue  # the same fix cherry-picked onto another line
        parent = parents[0]
        status = git(git_dir, "diff-tree", "--no-commit-id", "-r", "--no-renames", "--name-status", parent, sha)
        changed = [tuple(line.split("\t", 1)) for line in status.splitlines() if "\t" in line]
        source = [(st, path) for st, path in changed if is_source_path(path)]
        if not source or len(source) > MAX_GOLD or any(st != "M" for st, _ in source):
            continue  # no library change, too wide, or a file that the parent tree lacks
        gold = sorted(path for _, path in source)
        if not any(changes_code(git_dir, parent, sha, path) for path in gold):
            continue
        seen_messages.add(key)
        found.append(Candidate(repo, sha, parent, ts, subject, message, gold, [(s, p) for s, p in changed]))
    return found


def sample(items: list[Candidate], k: int, salt: str) -> list[Candidate]:
    """A seeded sample of `k` items (all of them when fewer), kept in history order."""
    if len(items) <= k:
        return list(items)
    rng = random.Random(f"{SEED}:{salt}")
    picked = sorted(rng.sample(range(len(items)), k))
    return [items[i] for i in picked]


# ---------------------------------------------------------------------------------------------
# Traceback queries
# ---------------------------------------------------------------------------------------------


def import_roots(tree: Path) -> list[Path]:
    """Directories to put on sys.path so the tree's own package is imported: `src/` if present, else the root."""
    return [tree / "src", tree] if (tree / "src").is_dir() else [tree]


def _new_tests(git_dir: Path, cand: Candidate) -> dict[str, list[str]]:
    """Test functions the commit adds, by test file: {path: [name, ...]}."""
    out: dict[str, list[str]] = {}
    for st, path in cand.changed:
        if st not in ("A", "M") or not path.endswith(".py") or not is_test_path(path):
            continue
        if PurePosixPath(path).name == "conftest.py":
            continue
        before = git(git_dir, "show", f"{cand.parent}:{path}", check=False) if st == "M" else ""
        after = git(git_dir, "show", f"{cand.commit}:{path}", check=False)
        pattern = re.compile(r"^\s*(?:async\s+)?def\s+(test\w*)\s*\(", re.MULTILINE)
        old = set(pattern.findall(before))
        new = [name for name in dict.fromkeys(pattern.findall(after)) if name not in old]
        if new:
            out[path] = new
    return out


def _test_source(git_dir: Path, commit: str, path: str, name: str, max_lines: int = 30) -> str | None:
    """The source of test function `name` in `path` at `commit`, with its decorators, dedented."""
    src = git(git_dir, "show", f"{commit}:{path}", check=False)
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            lines = src.splitlines()[first - 1 : node.end_lineno]
            if len(lines) > max_lines:
                return None  # too long to read as a reproducer
            return textwrap.dedent("\n".join(lines))
    return None


def _new_black_cases(cand: Candidate) -> list[str]:
    """Data-driven test cases (input [+ `# output`]) the commit adds under tests/; black's tests."""
    if cand.repo != "psf/black":
        return []
    out = []
    for st, path in cand.changed:
        name = PurePosixPath(path).name
        helper = name.startswith("test_") or name in ("conftest.py", "__init__.py", "util.py")
        if st == "A" and path.startswith("tests/") and name.endswith(".py") and not helper:
            out.append(path)
    return out[:5]


def run_new_tests(git_dir: Path, cand: Candidate, python: str, tmp: Path, timeout: float) -> list[dict[str, Any]]:
    """Run the commit's new tests against the parent's library code; return crashes captured by the plugin."""
    tests = _new_tests(git_dir, cand)
    cases = _new_black_cases(cand)
    if not tests and not cases:
        return []
    tree = tmp / f"tree-{cand.parent[:12]}"
    if tree.exists():
        shutil.rmtree(tree)
    materialize(git_dir, cand.parent, tree)
    # The commit's tests (and conftest/fixtures) over the parent's library code.
    for st, path in cand.changed:
        if is_test_path(path) or "/tests/" in f"/{path}":
            target = tree / path
            if st == "D":
                target.unlink(missing_ok=True)
                continue
            blob = subprocess.run(
                ["git", f"--git-dir={git_dir}", "show", f"{cand.commit}:{path}"], capture_output=True, check=False
            )
            if blob.returncode == 0:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(blob.stdout)
    out_file = tmp / "captured.jsonl"
    out_file.unlink(missing_ok=True)
    node_ids = [f"{path}::{name}" for path, names in tests.items() for name in names]
    shim = tmp / "shim"  # modules a package build would generate
    shim.mkdir(exist_ok=True)
    (shim / "_black_version.py").write_text('version = "0+bench"\n')
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp),
        "PYTHONPATH": os.pathsep.join([str(HERE), *map(str, import_roots(tree)), str(shim)]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "CADRE_CAPTURE_OUT": str(out_file),
        "CADRE_CAPTURE_ROOT": str(tree),
        "NO_COLOR": "1",
        "TERM": "dumb",
        "COLUMNS": "80",
        # Tests must not reach the network: point proxies at a dead loopback port.
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "ALL_PROXY": "http://127.0.0.1:9",
    }
    cmd = [
        python,
        "-m",
        "pytest",
        "-p",
        "_capture_plugin",
        "-p",
        "no:cacheprovider",
        "-q",
        "-x",
        "--no-header",
        "-o",
        "addopts=",
        "-o",
        "filterwarnings=",
        *node_ids,
    ]
    try:
        for case in cases:
            if out_file.exists():
                break
            case_cmd = [python, str(PLUGIN), "black-case", case]
            subprocess.run(case_cmd, cwd=tree, env=env, capture_output=True, timeout=timeout, check=False)
        if node_ids and not out_file.exists():
            proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, timeout=timeout, check=False)
            if proc.returncode in (2, 3, 4) and not out_file.exists():
                # Old conftests often break on today's plugins (hypothesis, asyncio): try without them.
                cmd.insert(cmd.index("-q"), "--noconftest")
                subprocess.run(cmd, cwd=tree, env=env, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return []
    if not out_file.exists():
        return []
    return [json.loads(line) for line in out_file.read_text().splitlines() if line.strip()]


def display_path(rel: str) -> str:
    """How a library file shows in a user's traceback: its import path under site-packages."""
    p = PurePosixPath(rel)
    if p.parts[0] == "src":
        p = PurePosixPath(*p.parts[1:])
    return f"/home/user/.venv/lib/python3.11/site-packages/{p}"


def render_traceback(crash: dict[str, Any], test_name: str) -> str | None:
    """A Python-style traceback from captured frames; test frames become the user's script."""
    lines = ["Traceback (most recent call last):"]
    lib_frames = 0
    for fr in crash["frames"]:
        rel = fr["path"]
        if is_test_path(rel):
            shown, func = "/home/user/repro.py", fr["func"] if fr["func"] != test_name else "<module>"
        elif is_source_path(rel):
            shown, func = display_path(rel), fr["func"]
            lib_frames += 1
        else:
            continue
        lines.append(f'  File "{shown}", line {fr["line"]}, in {func}')
        if fr.get("text"):
            lines.append(f"    {fr['text']}")
    if not lib_frames:
        return None
    message = crash["message"].strip()
    if len(message) > 500:
        message = message[:500] + "..."
    lines.append(f"{crash['type']}: {message}" if message else crash["type"])
    return "\n".join(lines)


def traceback_query(git_dir: Path, cand: Candidate, crash: dict[str, Any]) -> str | None:
    tb = render_traceback(crash, crash["test"])
    if tb is None:
        return None
    parts = [cand.subject, ""]
    if crash["via"] == "black-case":
        src = git(git_dir, "show", f"{cand.commit}:{crash['test_path']}", check=False).splitlines()
        cut = next((i for i, ln in enumerate(src) if ln.rstrip() == "# output"), len(src))
        code = [ln for ln in src[:cut] if not ln.startswith("# flags:")]
        if len(code) > 40:
            return None  # too long to read as a reproducer
        parts += ["Black crashes when formatting this:", "", "```python", "\n".join(code).strip("\n"), "```", ""]
    elif reproducer := _test_source(git_dir, cand.commit, crash["test_path"], crash["test"]):
        parts += ["To reproduce:", "", "```python", reproducer, "```", ""]
    parts += ["```", tb, "```"]
    return "\n".join(parts)


def gold_functions(git_dir: Path, parent: str, gold: list[str]) -> set[str]:
    """Names of the functions and classes the gold files define in the parent (dunders and short names left out)."""
    names: set[str] = set()
    for path in gold:
        try:
            tree = ast.parse(git(git_dir, "show", f"{parent}:{path}", check=False))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            is_def = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            if is_def and len(node.name) >= 4 and not node.name.startswith("__"):
                names.add(node.name)
    return names


def tb_names_gold(crash: dict[str, Any], gold: list[str], functions: set[str]) -> bool:
    """The traceback passes through a gold file, or a library frame calls/is a function a gold file defines."""
    for fr in crash["frames"]:
        if fr["path"] in gold:
            return True
        if is_source_path(fr["path"]) and (
            fr["func"] in functions or any(f"{name}(" in fr.get("text", "") for name in functions)
        ):
            return True
    return False


# ---------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repos-dir", type=Path, help="dir holding the git dirs (e.g. /work/.mirror)")
    ap.add_argument("--repo-map", action="append", default=[], help="owner/name=GITDIR override (repeatable)")
    ap.add_argument("--rev", action="append", default=[], help="owner/name=REV to read history from (default HEAD)")
    ap.add_argument("--repo", action="append", default=[], help="only these repos (owner/name)")
    ap.add_argument("--per-repo", type=int, default=50, help="commit-kind queries per repo (seeded sample)")
    ap.add_argument("--tb-per-repo", type=int, default=20, help="max test-derived traceback queries per repo")
    ap.add_argument("--python", help="interpreter with pytest and the repos' deps, to derive traceback queries")
    ap.add_argument("--python-map", action="append", default=[], help="owner/name=PYTHON per-repo interpreter")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per test run")
    ap.add_argument("--out", type=Path, default=HERE / "queries.jsonl")
    ap.add_argument("--stats", type=Path, help="write selection statistics as JSON here")
    args = ap.parse_args()

    overrides = parse_repo_map(args.repo_map)
    revs = dict(item.split("=", 1) for item in args.rev)
    pythons = dict(item.split("=", 1) for item in args.python_map)
    repos = [r for r in REPOS if not args.repo or r in args.repo]
    rows: list[dict[str, Any]] = []
    stats: dict[str, Any] = {}
    for repo in repos:
        git_dir = resolve_git_dir(args.repos_dir, repo, overrides)
        rev = revs.get(repo, "HEAD")
        head = git(git_dir, "rev-parse", rev).strip()
        cands = find_candidates(repo, git_dir, head)
        # Tracebacks written in the commit message itself: traceback kind only.
        msg_tb = [c for c in cands if _TRACEBACK in c.message]
        picked = sample([c for c in cands if c not in msg_tb], args.per_repo, repo)
        short = repo.split("/")[1]
        repo_rows = [
            {
                "id": f"{short}-{c.commit[:10]}",
                "repo": repo,
                "commit": c.commit,
                "parent": c.parent,
                "query": c.message,
                "gold": c.gold,
                "kind": "commit",
            }
            for c in picked
        ]
        tb_rows = [
            {
                "id": f"{short}-{c.commit[:10]}-msgtb",
                "repo": repo,
                "commit": c.commit,
                "parent": c.parent,
                "query": c.message,
                "gold": c.gold,
                "kind": "traceback",
            }
            for c in msg_tb
        ]
        tested = crashed = 0
        python = pythons.get(repo, args.python)
        if python:
            made: list[dict[str, Any]] = []
            with tempfile.TemporaryDirectory(prefix="cadre-tb-") as tmpname:
                tmp = Path(tmpname)
                for c in cands:
                    if c in msg_tb:
                        continue
                    crashes = run_new_tests(git_dir, c, python, tmp, args.timeout)
                    tested += 1
                    if crashes:
                        functions = gold_functions(git_dir, c.parent, c.gold)
                        crashes = [cr for cr in crashes if tb_names_gold(cr, c.gold, functions)]
                    for cr in crashes:
                        query = traceback_query(git_dir, c, cr)
                        if query:
                            crashed += 1
                            made.append(
                                {
                                    "id": f"{short}-{c.commit[:10]}-tb",
                                    "repo": repo,
                                    "commit": c.commit,
                                    "parent": c.parent,
                                    "query": query,
                                    "gold": c.gold,
                                    "kind": "traceback",
                                }
                            )
                            break
                    print(f"  {repo} {c.commit[:10]} tests={tested} crashes={crashed}", file=sys.stderr, flush=True)
            rng = random.Random(f"{SEED}:tb:{repo}")
            if len(made) > args.tb_per_repo:
                keep = set(rng.sample(range(len(made)), args.tb_per_repo))
                made = [m for i, m in enumerate(made) if i in keep]
            tb_rows += made
        stats[repo] = {
            "head": head,
            "candidates": len(cands),
            "commit_queries": len(repo_rows),
            "traceback_queries": len(tb_rows),
            "message_tracebacks": len(msg_tb),
            "tests_run": tested,
            "test_crashes_naming_gold": crashed,
        }
        print(f"{repo}: {stats[repo]}", file=sys.stderr, flush=True)
        rows += repo_rows + tb_rows

    with args.out.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    if args.stats:
        args.stats.write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {len(rows)} queries to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
