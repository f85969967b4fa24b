"""First answer on a fresh repository, and `cadre search` start-up: before vs after, side by side.

The tree: real Python files from several historical snapshots of repositories you already
have as git directories (the `fetch` mirrors under /work/.mirror: rich, black, click, ...),
each snapshot under its own folder (`black-<commit>/...`), written into a temp dir and removed
afterwards. Distinct blobs only; files are taken in sha256(path) order, keeping those of at
least S bytes, with S chosen so that the first --files of them total about --mb. Nothing is
fetched and no fetched code lands in this repository.

* first answer: spawn `python -m cadre_search --root TREE` with an empty index (fresh
  XDG_CACHE_HOME per run), connect the real MCP client (`mcp.Client` over stdio), call
  `search_codebase` with a query built from the tree (a function's name and docstring words),
  and time spawn -> answer. Each run uses its own query; both sides get the same queries,
  interleaved. "agreement" compares each first answer's top hit and top 5 files with the
  answer of a complete index (the same code, in-process) to the same query.
* CLI: warm `cadre search --json QUERY` (the index already built) against `cadre --help`,
  the bare CLI start-up, medians over --cli-runs, interleaved.

"before" is the code at --before (default `main`): its `servers/search/src` and `app/src`
are exported with `git archive` into the temp dir and put first on PYTHONPATH.

    .venv/bin/python bench/search/first_answer.py --mirror-dir /work/.mirror [--runs 7] [--files 2000] [--mb 40]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _corpus import Corpus, git, read_blobs, tree_blobs
from speed import corpus_functions, five_word_queries

from _common import REPO_ROOT, environment_info, host_env, markdown_table, write_results

VENV_BIN = Path(sys.executable).parent
REPOS = ("psf+black", "Textualize+rich", "pallets+click", "pallets+jinja", "encode+httpx",
         "python-attrs+attrs", "marshmallow-code+marshmallow")  # fmt: skip
BAR_S = 3.0
CLI_BAR_MS = 100.0


# --- the tree ----------------------------------------------------------------------------------


def snapshots(git_dir: Path, count: int) -> list[str]:
    """`count` commits spread evenly over the first-parent history of HEAD, newest first."""
    commits = git(git_dir, "rev-list", "--first-parent", "HEAD").decode().split()
    step = max(1, len(commits) // count)
    return commits[::step][:count]


def build_tree(mirror_dir: Path, dest: Path, files: int, mb: float, per_repo: int) -> Corpus:
    """Write about `files` distinct .py blobs totalling about `mb` MB under `dest`."""
    seen: set[str] = set()
    candidates: list[tuple[str, Path, Any]] = []  # (path in tree, git dir, blob)
    for repo in REPOS:
        git_dir = mirror_dir / repo / "repo"
        if not git_dir.is_dir():
            continue
        for commit in snapshots(git_dir, per_repo):
            for blob in tree_blobs(git_dir, commit):
                if blob.path.endswith(".py") and 0 < blob.size < 1_000_000 and blob.sha not in seen:
                    seen.add(blob.sha)
                    name = f"{repo.split('+')[1]}-{commit[:8]}/{blob.path}"
                    candidates.append((name, git_dir, blob))
    candidates.sort(key=lambda c: hashlib.sha256(c[0].encode()).hexdigest())
    target = mb * 1e6
    lo, hi = 0, 200_000
    while lo < hi:  # the largest minimum size whose first `files` picks still reach the target
        mid = (lo + hi + 1) // 2
        picked = [c for c in candidates if c[2].size >= mid][:files]
        if len(picked) == files and sum(c[2].size for c in picked) <= target:
            lo = mid
        else:
            hi = mid - 1
    chosen = [c for c in candidates if c[2].size >= lo][:files]
    by_repo: dict[Path, list[tuple[str, Any]]] = {}
    for name, git_dir, blob in chosen:
        by_repo.setdefault(git_dir, []).append((name, blob))
    for git_dir, items in by_repo.items():
        contents = read_blobs(git_dir, [b for _, b in items])
        for name, blob in items:
            target_path = dest / name
            target_path.parent.mkdir(parents=True, exist_ok=True)
            target_path.write_bytes(contents[blob.path])
    corpus = Corpus(dest, str(mirror_dir), f"{per_repo} snapshots per repo", "-")
    corpus.files = sorted(name for name, _, _ in chosen)
    corpus.bytes = sum(c[2].size for c in chosen)
    return corpus


def export_before(ref: str, dest: Path) -> list[str]:
    """The search server and app sources at `ref`, for PYTHONPATH."""
    data = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", ref, "servers/search/src", "app/src"], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return [str(dest / "servers/search/src"), str(dest / "app/src")]


# --- measurements ------------------------------------------------------------------------------


async def first_answer(root: Path, query: str, env: dict[str, str], errlog: Path) -> tuple[float, dict[str, Any]]:
    import anyio
    from mcp import Client, StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=sys.executable, args=["-m", "cadre_search", "--root", str(root)], env=env, cwd=str(root)
    )
    with errlog.open("a") as err, anyio.fail_after(120):
        started = time.perf_counter()
        async with Client(stdio_client(params, errlog=err)) as client:
            result = await client.call_tool("search_codebase", {"query": query, "limit": 10})
            elapsed = time.perf_counter() - started
    if result.is_error or result.structured_content is None:
        raise RuntimeError(f"search_codebase failed: {result.content}")
    return elapsed, result.structured_content


def full_answers(root: Path, queries: list[str], cache: Path) -> list[list[str]]:
    """The files a complete index ranks first for each query (this checkout's code)."""
    from cadre_search.engine import Engine

    engine = Engine(root, index_path=cache / "full.sqlite")
    engine.refresh()
    return [[h.path for h in engine.search(q, limit=10).hits] for q in queries]


def cli_runs(root: Path, queries: list[str], env: dict[str, str]) -> tuple[list[float], list[float]]:
    """Wall ms of warm `cadre search --json` and of `cadre --help`, interleaved."""
    search, bare = [], []
    cadre = str(VENV_BIN / "cadre")
    for query in queries:
        for argv, out in (([cadre, "--help"], bare), ([cadre, "search", "--root", str(root), "--json", query], search)):
            started = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True, env=env)
            out.append((time.perf_counter() - started) * 1000)
    return search, bare


def side_env(base: dict[str, str], paths: list[str], cache: Path) -> dict[str, str]:
    env = {**base, "XDG_CACHE_HOME": str(cache), "PYTHONUNBUFFERED": "1"}
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mirror-dir", type=Path, default=Path("/work/.mirror"))
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--mb", type=float, default=40.0)
    parser.add_argument("--snapshots", type=int, default=12, help="historical trees per repository")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--cli-runs", type=int, default=15)
    parser.add_argument("--before", default="main", help="git ref of the 'before' code; '' to skip")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="cadre-first-answer-") as tmp_name:
        tmp = Path(tmp_name)
        corpus = build_tree(args.mirror_dir, tmp / "tree", args.files, args.mb, args.snapshots)
        print(f"tree: {len(corpus.files)} files, {corpus.bytes / 1e6:.1f} MB", file=sys.stderr)
        functions, _ = corpus_functions(corpus)
        rng = random.Random(15)
        queries = [q for q, _ in five_word_queries(functions, args.runs, rng)]
        base = host_env({})
        sides = {"after": []}
        if args.before:
            sides = {"before": export_before(args.before, tmp / "before"), **sides}
        times: dict[str, list[float]] = {s: [] for s in sides}
        answers: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
        import anyio

        for i, query in enumerate(queries):
            order = list(sides) if i % 2 == 0 else list(reversed(sides))
            for side in order:
                cache = Path(tempfile.mkdtemp(dir=tmp, prefix=f"cache-{side}-"))
                env = side_env(base, sides[side], cache)
                seconds, answer = anyio.run(first_answer, corpus.root, query, env, tmp / f"{side}.log")
                times[side].append(seconds)
                answers[side].append(answer)
                print(f"[{i + 1}/{len(queries)}] {side:<6} {seconds:6.2f} s", file=sys.stderr)

        full = full_answers(corpus.root, queries, tmp)
        agreement = {}
        for side in sides:
            top1 = sum(bool(a["hits"]) and bool(f) and a["hits"][0]["path"] == f[0]
                       for a, f in zip(answers[side], full, strict=True))  # fmt: skip
            top5 = [len({h["path"] for h in a["hits"][:5]} & set(f[:5])) / max(1, min(5, len(f)))
                    for a, f in zip(answers[side], full, strict=True)]  # fmt: skip
            agreement[side] = {"top1": top1 / len(queries), "top5_overlap": statistics.mean(top5)}

        cli: dict[str, dict[str, float]] = {}
        cli_queries = [q for q, _ in five_word_queries(functions, args.cli_runs, random.Random(16))]
        for side in sides:
            env = side_env(base, sides[side], tmp / f"cli-cache-{side}")
            subprocess.run([str(VENV_BIN / "cadre"), "search", "--root", str(corpus.root), "--json", "warm up"],
                           check=True, capture_output=True, env=env)  # fmt: skip
            search, bare = cli_runs(corpus.root, cli_queries, env)
            cli[side] = {"search_ms": statistics.median(search), "version_ms": statistics.median(bare)}
            cli[side]["above_ms"] = cli[side]["search_ms"] - cli[side]["version_ms"]

    rows = []
    for side in sides:
        ordered = sorted(times[side])
        rows.append([
            side, f"{statistics.median(ordered):.2f} s", f"{ordered[0]:.2f}–{ordered[-1]:.2f} s",
            f"{agreement[side]['top1']:.0%}", f"{agreement[side]['top5_overlap']:.0%}",
            f"{cli[side]['search_ms']:.0f} ms", f"{cli[side]['version_ms']:.0f} ms", f"{cli[side]['above_ms']:.0f} ms",
        ])  # fmt: skip
    table = markdown_table(
        ["code", "first answer (median)", "range", "top-1 = full index", "top-5 overlap",
         "`cadre search` warm", "`cadre --help`", "search above start-up"],
        rows,
    )  # fmt: skip
    notes = {side: answers[side][0].get("notes") for side in sides}
    results = {
        "benchmark": "search_first_answer",
        "tree": {"files": len(corpus.files), "mb": round(corpus.bytes / 1e6, 1), "snapshots": args.snapshots},
        "bars": {"first_answer_s": BAR_S, "cli_above_startup_ms": CLI_BAR_MS},
        "queries": queries,
        "first_answer_s": times,
        "agreement": agreement,
        "cli": cli,
        "notes_first_run": notes,
        "environment": environment_info(),
        "table": table,
    }
    path = write_results("search_first_answer", results, args.out)
    print(table)
    print(f"\nwritten to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
