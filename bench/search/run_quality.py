"""File-localization quality of `cadre search` against plain whole-file BM25, in the same run.

For every query in bench/search/queries.jsonl the parent commit's tree is checked out into a
temp dir from a git dir the user provides (nothing is fetched, nothing lands in this repo),
then two rankers run on that same tree:

  system    the CLI contract `<cmd> search --root DIR --limit 10 --json -` with the query on
            stdin; hits are reduced to files in rank order.
  baseline  whole-file BM25 over every `.py` file of the tree, in pure Python: lowercase
            alphanumeric tokens, k1=1.2, b=0.75, no code-aware splitting, no boosts.

A query counts for Acc@k when any gold file is in the top k files; MRR uses the first gold
file's rank (0 past the limit). Reported overall, per kind and per repo, plus
Acc@5(system) / Acc@5(baseline) against the bar of 1.3.

    .venv/bin/python bench/search/run_quality.py --repos-dir /work/.mirror \
        [--cmd .venv/bin/cadre] [--repo pallets/click] [--kind traceback] [--limit-queries 20]

`--prose` runs the prose bug-report benchmark instead (bench/search/prose/*.jsonl, checked
by check_labels.py) and writes bench/results/search_prose.json; `--queries` takes any
`.jsonl` file or directory of them (repeatable).

`--repos-dir` holds one git dir per repo, bare or not, named like `owner+name/repo`
(the /work/.mirror layout), `owner+name[.git]`, `owner/name[.git]` or `name[.git]`;
`--repo-map owner/name=PATH` points at one directly.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _repos import REPOS, jsonl_files, materialize, parse_repo_map, resolve_git_dir

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
DEFAULT_QUERIES = HERE / "queries.jsonl"
PROSE_QUERIES = HERE / "prose"
DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "search_quality.json"
PROSE_OUT = REPO_ROOT / "bench" / "results" / "search_prose.json"
DEFAULT_CMD = str(REPO_ROOT / ".venv" / "bin" / "cadre")
KS = (1, 3, 5, 10)
BAR = 1.3
PROSE_GOAL = {"acc@1": 0.60, "acc@5": 0.85}
_XDG_VARS = ("XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME")

# ---------------------------------------------------------------------------------------------
# Baseline: plain whole-file BM25
# ---------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    """Lowercase alphanumeric runs; `snake_case` and `camelCase` are not split."""
    return _TOKEN.findall(text.lower())


class BM25:
    """Okapi BM25 over whole files (Lucene's non-negative idf); the query is a bag of tokens."""

    def __init__(self, docs: dict[str, str], k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.paths = sorted(docs)
        self.lengths: list[int] = []
        self.postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for i, path in enumerate(self.paths):
            counts = Counter(tokenize(docs[path]))
            self.lengths.append(sum(counts.values()))
            for term, tf in counts.items():
                self.postings[term].append((i, tf))
        n = len(self.paths)
        self.avgdl = (sum(self.lengths) / n) if n else 0.0
        self.idf = {t: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5)) for t, p in self.postings.items()}

    @classmethod
    def from_tree(cls, root: Path) -> BM25:
        """Index every `.py` file under `root` (no symlinks followed out, unreadable files skipped)."""
        return cls(dict(iter_python_files(root)))

    def rank(self, query: str, limit: int | None = None) -> list[tuple[str, float]]:
        """(path, score) best first; ties broken by path; only files that match a query token."""
        scores: dict[int, float] = defaultdict(float)
        k1, b, avgdl = self.k1, self.b, self.avgdl or 1.0
        for term, qtf in Counter(tokenize(query)).items():
            postings = self.postings.get(term)
            if not postings:
                continue
            idf = self.idf[term] * qtf
            for i, tf in postings:
                norm = k1 * (1 - b + b * self.lengths[i] / avgdl)
                scores[i] += idf * tf * (k1 + 1) / (tf + norm)
        ranked = sorted(scores.items(), key=lambda item: (-item[1], self.paths[item[0]]))
        if limit is not None:
            ranked = ranked[:limit]
        return [(self.paths[i], s) for i, s in ranked]


def iter_python_files(root: Path) -> Iterable[tuple[str, str]]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            path = Path(dirpath) / name
            if path.is_symlink():
                continue
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            yield path.relative_to(root).as_posix(), text


# ---------------------------------------------------------------------------------------------
# System under test: the `cadre search` CLI contract
# ---------------------------------------------------------------------------------------------


def normalize_hit_path(path: str, root: Path) -> str:
    p = path.replace("\\", "/")
    if os.path.isabs(p):
        try:
            p = Path(p).resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            return p
    while p.startswith("./"):
        p = p[2:]
    return p


def dedupe_files(paths: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(paths))


def run_system(
    cmd: Sequence[str], root: Path, query: str, limit: int, timeout: float, env: dict[str, str]
) -> tuple[list[str], str | None, float]:
    """Files the system ranks for `query` (deduped, rank order), an error if any, and wall ms."""
    argv = [*cmd, "search", "--root", str(root), "--limit", str(limit), "--json", "-"]
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            argv, input=query.encode("utf-8"), capture_output=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return [], f"timeout after {timeout:.0f}s", (time.perf_counter() - start) * 1000
    except OSError as exc:
        return [], f"could not run {argv[0]}: {exc}", 0.0
    ms = (time.perf_counter() - start) * 1000
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", errors="replace").strip().splitlines()[-3:]
        return [], f"exit {proc.returncode}: {' | '.join(tail)}", ms
    try:
        hits = json.loads(proc.stdout)["hits"]
        paths = [normalize_hit_path(str(h["path"]), root) for h in hits]
    except (ValueError, KeyError, TypeError) as exc:
        return [], f"bad JSON output: {exc!r}", ms
    return dedupe_files(paths), None, ms


# ---------------------------------------------------------------------------------------------
# Metrics and report
# ---------------------------------------------------------------------------------------------


def first_gold_rank(files: Sequence[str], gold: Sequence[str]) -> int | None:
    golds = set(gold)
    for i, path in enumerate(files, 1):
        if path in golds:
            return i
    return None


def metrics(ranks: Sequence[int | None]) -> dict[str, float]:
    n = len(ranks)
    out: dict[str, float] = {"n": n}
    for k in KS:
        out[f"acc@{k}"] = sum(1 for r in ranks if r is not None and r <= k) / n if n else math.nan
    out["mrr"] = sum(1 / r for r in ranks if r is not None) / n if n else math.nan
    return out


def ratio(a: float, b: float) -> float:
    if b == 0 or math.isnan(a) or math.isnan(b):
        return math.inf if a > 0 else math.nan
    return a / b


def summarize(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    scopes: dict[str, list[dict[str, Any]]] = {"overall": results}
    for kind in sorted({r["kind"] for r in results}):
        scopes[f"kind={kind}"] = [r for r in results if r["kind"] == kind]
    for repo in sorted({r["repo"] for r in results}, key=repo_order):
        scopes[f"repo={repo}"] = [r for r in results if r["repo"] == repo]
    out = {}
    for name, rows in scopes.items():
        system = metrics([r["system"]["rank"] for r in rows])
        baseline = metrics([r["baseline"]["rank"] for r in rows])
        out[name] = {
            "system": system,
            "baseline": baseline,
            "acc@5_ratio": ratio(system["acc@5"], baseline["acc@5"]),
            "system_errors": sum(1 for r in rows if r["system"]["error"]),
        }
    return out


def repo_order(repo: str) -> tuple[int, str]:
    """The benchmark's fixed repo order first, then any other repo by name."""
    return (REPOS.index(repo) if repo in REPOS else len(REPOS), repo)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else ("inf" if math.isinf(value) else f"{value:.3f}")
    return str(value)


def markdown(summary: dict[str, dict[str, Any]]) -> str:
    """One row per scope; each cell is `system (baseline)`: Acc@k in percent, MRR@10 as a fraction."""
    keys = [f"acc@{k}" for k in KS] + ["mrr"]
    headers = ["scope", "n", *(f"Acc@{k}" for k in KS), "MRR@10", "Acc@5 ratio", "sys errors"]
    lines = ["| " + " | ".join(headers) + " |", "| :--- | " + " | ".join("---:" for _ in headers[1:]) + " |"]
    for scope, row in summary.items():
        cells = [scope, str(row["system"]["n"])]
        cells += [f"{_metric(row['system'][k], k)} ({_metric(row['baseline'][k], k)})" for k in keys]
        cells += [_fmt(row["acc@5_ratio"]), str(row["system_errors"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _metric(value: float, key: str) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.3f}" if key == "mrr" else f"{value * 100:.1f}"


def json_safe(value: Any) -> Any:
    """NaN and infinity become null, so the file is strict JSON."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def environment_info() -> dict[str, Any]:
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


# ---------------------------------------------------------------------------------------------


def load_queries(paths: Sequence[Path], repos: list[str], kinds: list[str], limit: int | None) -> list[dict[str, Any]]:
    rows = [
        json.loads(line)
        for path in jsonl_files(list(paths))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    rows = [r for r in rows if (not repos or r["repo"] in repos) and (not kinds or r["kind"] in kinds)]
    if limit is not None and len(rows) > limit:
        # Interleave repos (file order within each) so a quick run still covers every repo.
        by_repo: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            by_repo[r["repo"]].append(r)
        queues = [by_repo[k] for k in sorted(by_repo, key=repo_order)]
        picked: list[dict[str, Any]] = []
        i = 0
        while len(picked) < limit:
            for q in queues:
                if i < len(q) and len(picked) < limit:
                    picked.append(q[i])
            i += 1
        rows = picked
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repos-dir", type=Path, help="dir holding one git dir per repo (e.g. /work/.mirror)")
    ap.add_argument("--repo-map", action="append", default=[], help="owner/name=GITDIR override (repeatable)")
    ap.add_argument("--queries", type=Path, action="append", help=f"jsonl file or dir (default {DEFAULT_QUERIES})")
    ap.add_argument("--prose", action="store_true", help=f"the prose benchmark: {PROSE_QUERIES}/*.jsonl")
    ap.add_argument("--cmd", default=DEFAULT_CMD, help=f"the cadre command, split shell-style (default {DEFAULT_CMD})")
    ap.add_argument("--limit", type=int, default=10, help="hits asked of the system; also the cut-off for MRR")
    ap.add_argument("--limit-queries", type=int, help="run at most N queries (repos interleaved)")
    ap.add_argument("--repo", action="append", default=[], help="only this repo (owner/name; repeatable)")
    kinds = ["commit", "traceback", "prose"]
    ap.add_argument("--kind", action="append", default=[], choices=kinds, help="only this kind")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per system call (first one indexes)")
    ap.add_argument("--no-isolate", action="store_true", help="let the system use the real XDG dirs for its index")
    ap.add_argument("--out", type=Path, help=f"results json (default {DEFAULT_OUT}; with --prose {PROSE_OUT})")
    ap.add_argument("-v", "--verbose", action="store_true", help="print one line per query")
    args = ap.parse_args()

    overrides = parse_repo_map(args.repo_map)
    query_paths = args.queries or [PROSE_QUERIES if args.prose else DEFAULT_QUERIES]
    out = args.out or (PROSE_OUT if args.prose else DEFAULT_OUT)
    queries = load_queries(query_paths, args.repo, args.kind, args.limit_queries)
    if not queries:
        print("no queries selected", file=sys.stderr)
        return 2
    cmd = shlex.split(args.cmd)
    try:
        git_dirs = {r: resolve_git_dir(args.repos_dir, r, overrides) for r in sorted({q["repo"] for q in queries})}
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    # Group by tree so each parent is checked out and indexed once; report in file order.
    order = {q["id"]: i for i, q in enumerate(queries)}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for q in queries:
        groups[(q["repo"], q["parent"])].append(q)

    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cadre-search-quality-") as tmpname:
        tmp = Path(tmpname)
        env = dict(os.environ)
        if not args.no_isolate:
            for var in _XDG_VARS:
                (tmp / var.lower()).mkdir()
                env[var] = str(tmp / var.lower())
        done = 0
        for (repo, parent), group in groups.items():
            tree = tmp / "trees" / f"{repo.replace('/', '+')}-{parent[:12]}"
            try:
                materialize(git_dirs[repo], parent, tree)
            except Exception as exc:
                print(f"skip {len(group)} queries: cannot check out {repo}@{parent[:12]}: {exc}", file=sys.stderr)
                continue
            bm25 = BM25.from_tree(tree)
            for q in group:
                base_files = [p for p, _ in bm25.rank(q["query"], args.limit)]
                sys_files, error, ms = run_system(cmd, tree, q["query"], args.limit, args.timeout, env)
                sys_files = sys_files[: args.limit]
                row = {
                    "id": q["id"],
                    "repo": repo,
                    "kind": q["kind"],
                    "gold": q["gold"],
                    "system": {"rank": first_gold_rank(sys_files, q["gold"]), "files": sys_files, "error": error},
                    "baseline": {"rank": first_gold_rank(base_files, q["gold"]), "files": base_files},
                    "system_ms": round(ms, 1),
                }
                results.append(row)
                done += 1
                if args.verbose or error:
                    print(
                        f"[{done}/{len(queries)}] {q['id']}: system rank={row['system']['rank']} "
                        f"baseline rank={row['baseline']['rank']}" + (f" ERROR {error}" if error else ""),
                        file=sys.stderr,
                        flush=True,
                    )
            shutil.rmtree(tree, ignore_errors=True)
    results.sort(key=lambda r: order[r["id"]])
    if not results:
        print("no query could be run", file=sys.stderr)
        return 2

    summary = summarize(results)
    overall = summary["overall"]
    table = markdown(summary)
    print(table)
    if args.prose:  # the prose issue's goal: file-level Acc@5 >= 85 and Acc@1 >= 60
        system = overall["system"]
        passes = all(system[k] >= goal for k, goal in PROSE_GOAL.items())
        verdict = f"Acc@1 {_metric(system['acc@1'], 'acc@1')}, Acc@5 {_metric(system['acc@5'], 'acc@5')} (goal 60 / 85)"
    else:
        passes = overall["acc@5_ratio"] >= BAR
        verdict = f"Acc@5 system/baseline = {_fmt(overall['acc@5_ratio'])} (bar {BAR})"
    print(
        f"\n{verdict}: {'PASS' if passes else 'FAIL'}; "
        f"{len(results)} queries, {overall['system_errors']} system errors, "
        f"{time.perf_counter() - started:.0f}s"
    )
    data = {
        "benchmark": "search_prose" if args.prose else "search_quality",
        "what": "file localization: cadre search vs whole-file BM25 on the parent tree of fix commits",
        "queries_file": ", ".join(map(str, query_paths)),
        "cmd": args.cmd,
        "limit": args.limit,
        "baseline": "whole-file BM25 over .py files; tokens [a-z0-9]+ lowercased; k1=1.2, b=0.75",
        "bar_acc5_ratio": BAR,
        "acc5_ratio": overall["acc@5_ratio"],
        "passes_bar": passes,
        "n_queries": len(results),
        "wall_s": round(time.perf_counter() - started, 1),
        "summary": summary,
        "table_markdown": table,
        "per_query": results,
        "environment": environment_info(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
