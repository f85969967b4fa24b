"""Check the labels of the prose bug-report benchmark (bench/search/prose/*.jsonl) against git.

Every row is checked for:

* shape: the fields below, `kind == "prose"`, id `<name>-<short sha>-prose`, `source` an issue
  or pull-request URL of the same repo or `written from fix <sha>`, a query of 1-4,000 chars;
* history: `commit` and `parent` exist and `parent` is the commit's first parent;
* gold: 1-5 distinct non-test library `.py` files, each present in the parent and modified
  (status M) by the commit;
* leaks: the query does not name a gold file's path, its module name, or a function, method
  or class of a gold file whose code the fix changed. A plain-word name (`core`, `echo`,
  `Option`, `URL`) counts only when written as code (`core.py`, `.echo`, `echo(`, `` `Option` ``,
  `pkg.core`); an identifier-like name (`_termui_impl`, `get_help_record`, `CliRunner`) counts
  anywhere as a whole word. A row may allow a name with a reason:
  `"allow": [{"name": "echo", "reason": "public API the user calls"}]`;
* no duplicate ids (across all files), no row from a SWE-bench repository.

    .venv/bin/python bench/search/check_labels.py --repos-dir /work/.mirror [FILE_OR_DIR ...]

Exits 1 and prints one line per problem when any row fails; reads git only.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from _repos import git, is_source_path, jsonl_files, parse_repo_map, resolve_git_dir
from build_queries import MAX_GOLD, MAX_QUERY_CHARS, _Normalize

HERE = Path(__file__).resolve().parent
DEFAULT_DIR = HERE / "prose"

# SWE-bench's twelve repositories: the held-out set, never used here.
SWE_BENCH_REPOS = frozenset(
    {
        "astropy/astropy",
        "django/django",
        "pallets/flask",
        "matplotlib/matplotlib",
        "pylint-dev/pylint",
        "pytest-dev/pytest",
        "psf/requests",
        "scikit-learn/scikit-learn",
        "mwaskom/seaborn",
        "sphinx-doc/sphinx",
        "sympy/sympy",
        "pydata/xarray",
    }
)
SWE_BENCH_NAMES = frozenset(r.split("/")[1] for r in SWE_BENCH_REPOS)
FIELDS = {"id", "repo", "commit", "parent", "query", "gold", "kind", "source"}
OPTIONAL = {"allow"}
_SHA = re.compile(r"[0-9a-f]{40}")
_PLAIN_WORD = re.compile(r"[A-Za-z][a-z]*|[A-Z]+")  # words and acronyms (URL, HTTP)


def load_rows(files: Iterable[Path]) -> Iterator[tuple[str, dict[str, Any] | None, str | None]]:
    """(where, row, error) per non-blank line; `row` is None when the line is not a JSON object."""
    for f in files:
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{f.name}:{n}"
            try:
                row = json.loads(line)
            except ValueError as exc:
                yield where, None, f"not JSON: {exc}"
                continue
            yield (where, row, None) if isinstance(row, dict) else (where, None, "not a JSON object")


# ---------------------------------------------------------------------------------------------
# Names a query must not leak
# ---------------------------------------------------------------------------------------------


def _defs(source: str) -> dict[str, str] | None:
    """{qualified name: normalized AST dump} of every function, method and class (nested too)."""
    try:
        tree = _Normalize().visit(ast.parse(source))
    except (SyntaxError, ValueError):
        return None
    out: dict[str, str] = {}

    def walk(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{node.name}"
                out[name] = ast.dump(node, include_attributes=False)
                walk(node.body, f"{name}.")
            elif isinstance(node, ast.If | ast.Try | ast.With):  # defs under `if sys.version...:` etc.
                for field in ("body", "orelse", "finalbody", "handlers"):
                    for child in getattr(node, field, []):
                        walk(child.body if isinstance(child, ast.ExceptHandler) else [child], prefix)

    walk(tree.body, "")
    return out


def changed_names(git_dir: Path, parent: str, commit: str, path: str) -> set[str]:
    """Short names of the defs in `path` (as in `parent`) whose code the commit changes or removes."""
    before = _defs(git(git_dir, "show", f"{parent}:{path}", check=False))
    after = _defs(git(git_dir, "show", f"{commit}:{path}", check=False)) or {}
    if not before:
        return set()
    return {q.rsplit(".", 1)[-1] for q, dump in before.items() if after.get(q) != dump}


def module_names(path: str) -> set[str]:
    """The module name a gold file is imported as: `core` for click/core.py, `_transports` for
    httpx/_transports/__init__.py; nothing for a top-level package's __init__.py, whose name
    (`httpx`) every user of the library writes."""
    p = PurePosixPath(path)
    if p.stem != "__init__":
        return {p.stem}
    top_level = len(p.parts) == 2 or (len(p.parts) == 3 and p.parts[0] == "src")
    return set() if top_level else {p.parent.name}


def _identifier_like(name: str) -> bool:
    return not _PLAIN_WORD.fullmatch(name)


def name_leaks(query: str, name: str) -> bool:
    """True when `query` names `name` the way the module docstring describes."""
    if len(name) < 3:
        return False
    word = re.escape(name)
    if _identifier_like(name):
        return re.search(rf"(?<![\w]){word}(?![\w])", query) is not None
    code = rf"(?<=[.`/]){word}(?![\w])|(?<![\w]){word}(?=\(|`|\.py\b|\.[A-Za-z_])"
    return re.search(code, query) is not None


# ---------------------------------------------------------------------------------------------
# Row checks
# ---------------------------------------------------------------------------------------------


def check_row(row: dict[str, Any], git_dir: Path | None) -> list[str]:
    """Problems with one row (empty when it passes)."""
    problems: list[str] = []
    missing = FIELDS - row.keys()
    extra = row.keys() - FIELDS - OPTIONAL
    if missing:
        return [f"missing fields: {', '.join(sorted(missing))}"]
    if extra:
        problems.append(f"unknown fields: {', '.join(sorted(extra))}")
    repo, commit, parent, query, gold = row["repo"], row["commit"], row["parent"], row["query"], row["gold"]
    if not isinstance(repo, str) or repo.count("/") != 1:
        return [f"repo must be owner/name, got {repo!r}"]
    owner, name = repo.split("/")
    if repo.lower() in SWE_BENCH_REPOS or name.lower() in SWE_BENCH_NAMES:
        problems.append(f"{repo} is a SWE-bench repository (held out)")
    if row["kind"] != "prose":
        problems.append(f"kind must be 'prose', got {row['kind']!r}")
    for key in ("commit", "parent"):
        if not isinstance(row[key], str) or not _SHA.fullmatch(row[key]):
            problems.append(f"{key} must be a full 40-hex sha")
    if problems and any("sha" in p for p in problems):
        return problems
    if not re.fullmatch(rf"{re.escape(name)}-{commit[:7]}[0-9a-f]{{0,33}}-prose", str(row["id"])):
        problems.append(f"id should be {name}-<short sha of commit>-prose, got {row['id']!r}")
    source = str(row["source"])
    url = re.fullmatch(rf"https://github\.com/{re.escape(owner)}/{re.escape(name)}/(issues|pull)/\d+", source)
    if not url and source != f"written from fix {commit}" and source != f"written from fix {commit[:10]}":
        problems.append(f"source must be an issue URL of {repo} or 'written from fix <sha>', got {source!r}")
    if not isinstance(query, str) or not query.strip():
        problems.append("empty query")
        query = ""
    elif len(query) > MAX_QUERY_CHARS:
        problems.append(f"query has {len(query)} chars (max {MAX_QUERY_CHARS})")
    if not isinstance(gold, list) or not gold or len(gold) > MAX_GOLD or len(set(gold)) != len(gold):
        return [*problems, f"gold must be 1-{MAX_GOLD} distinct paths"]
    for path in gold:
        if not is_source_path(path):
            problems.append(f"gold {path} is not a non-test library .py file")
    allowed: dict[str, str] = {}
    for item in row.get("allow", []):
        if not isinstance(item, dict) or not item.get("name") or not str(item.get("reason", "")).strip():
            problems.append(f"allow entries need a name and a reason, got {item!r}")
        else:
            allowed[item["name"]] = item["reason"]
    if git_dir is None:
        return problems

    first_parent = git(git_dir, "rev-parse", "--verify", "--quiet", f"{commit}^1^{{commit}}", check=False).strip()
    if not first_parent:
        return [*problems, f"commit {commit[:12]} not found (or has no parent)"]
    if first_parent != parent:
        problems.append(f"parent {parent[:12]} is not the first parent of {commit[:12]} ({first_parent[:12]})")
    status = git(git_dir, "diff-tree", "--no-commit-id", "-r", "--no-renames", "--name-status", parent, commit)
    changes = dict(reversed(line.split("\t", 1)) for line in status.splitlines() if "\t" in line)
    for path in gold:
        if changes.get(path) != "M":
            got = changes.get(path, "not changed")
            problems.append(f"gold {path} is not modified by the fix (status: {got})")

    leaks: set[str] = set()
    for path in gold:
        if path in query:
            leaks.add(path)
        names = module_names(path) | (changed_names(git_dir, parent, commit, path) if path in changes else set())
        leaks |= {n for n in names if name_leaks(query, n)}
    for leak in sorted(leaks - allowed.keys()):
        problems.append(f"query names {leak!r} from the gold files (reword, or allow it with a reason)")
    for name in sorted(allowed.keys() - leaks):
        problems.append(f"allow lists {name!r}, which the query does not leak (drop it)")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*", type=Path, default=[DEFAULT_DIR], help="jsonl files or dirs")
    ap.add_argument("--repos-dir", type=Path, help="dir holding one git dir per repo (e.g. /work/.mirror)")
    ap.add_argument("--repo-map", action="append", default=[], help="owner/name=GITDIR override (repeatable)")
    ap.add_argument("--no-git", action="store_true", help="check shape, ids and leaks of paths only")
    args = ap.parse_args(argv)

    files = jsonl_files(args.paths)
    if not files:
        print(f"no .jsonl files in {', '.join(map(str, args.paths))}", file=sys.stderr)
        return 2
    overrides = parse_repo_map(args.repo_map)
    git_dirs: dict[str, Path | None] = {}
    seen: dict[str, str] = {}
    counts: dict[str, int] = {}
    failed = 0
    for where, row, error in load_rows(files):
        problems = [error] if error else []
        if row is not None:
            rid = str(row.get("id"))
            if rid in seen:
                problems.append(f"duplicate id {rid} (also {seen[rid]})")
            seen.setdefault(rid, where)
            repo = str(row.get("repo"))
            if repo not in git_dirs:
                try:
                    git_dirs[repo] = None if args.no_git else resolve_git_dir(args.repos_dir, repo, overrides)
                except (FileNotFoundError, ValueError) as exc:
                    print(f"error: {exc}", file=sys.stderr)
                    return 2
            problems += check_row(row, git_dirs[repo])
            counts[repo] = counts.get(repo, 0) + 1
        for p in problems:
            print(f"{where} {row.get('id') if row else ''}: {p}")
        failed += bool(problems)
    total = sum(counts.values())
    per_repo = ", ".join(f"{r} {n}" for r, n in sorted(counts.items()))
    print(f"{total} rows ({per_repo}); {failed} with problems", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
