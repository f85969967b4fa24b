"""Speed and memory of the search engine on a real ~2,000-file, ~30 MB tree, against ripgrep.

The corpus is one commit of a real repository the user already has as a git directory
(e.g. the `fetch` mirror /work/.mirror/sympy+sympy/repo): the selected files are written
into a temp dir (see bench/search/_corpus.py for the deterministic selection) and removed
afterwards. Nothing is fetched and no fetched code lands in this repository.

Everything runs with XDG_* pointed into the temp dir. In-process measurements use
`Engine(root, index_path=<temp>)`, the same calls `search_codebase` makes:

* cold index: `Engine(...)` + the first `refresh()` on a fresh index (median of --cold-runs).
* peak RSS: a separate `cadre search --root DIR --json QUERY` process doing the cold index
  (and one query), with the parse workers it forks. The bar is judged on an upper bound of
  the tree's summed RSS: wait4()'s ru_maxrss (the largest single process of the tree, exact)
  plus the high-water mark (VmHWM) of every worker. A sampler also reads /proc every 20 ms
  for the peak of the summed RSS and of the summed PSS of the live tree (forked workers share
  pages with the parent, so summed RSS counts those twice and summed PSS is what the machine
  really paid).
* re-index after a one-file edit: append a line to one file, then `refresh()`
  (median of --edits files); "edit + query" times the `search()` a user would make instead,
  and checks that the appended marker is found in the edited file.
* warm query latency: `search(query, limit=10)` for 5-word queries and ~1,000-character bug
  reports with a traceback, both built from the corpus's own functions, docstrings and
  lines; each call includes the engine's staleness check, as users get it. "ranking only"
  times the same queries without the check, to show what the check costs.
* a stress row: 30 of the 5-word queries with their last word replaced by the top-level package
  name, which is in nearly every chunk's path terms (info only).
* ripgrep (the `ripgrep` wheel) on the same literal identifiers: `rg -F -l` and `rg -F -n`
  as subprocesses (their spawn is part of what an agent's grep turn costs), interleaved
  with `search()` of the same literal.

Bars (issue 3, on this 2-core machine): cold index <= 5 s, peak RSS <= 300 MB, re-index
after one edit <= 200 ms (median), warm query p95 <= 20 ms (5 words) and <= 50 ms
(1,000 characters).

    .venv/bin/python bench/search/speed.py --git-dir /work/.mirror/sympy+sympy/repo --ref HEAD \
        [--files 2000] [--mb 30] [--cold-runs 3] [--queries 150] [--edits 25] [--rg-runs 25] \
        [--profile] [--keep]

`--profile` adds cProfile summaries (top functions by own time) of a serial cold build,
the no-change staleness check, both query kinds and the one-edit refresh.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _corpus import Corpus, materialize, resolve_git_dir

from _common import environment_info, markdown_table, percentile, summary, write_results
from cadre_search.tokens import STOPWORDS

VENV_BIN = Path(sys.executable).parent
CADRE = VENV_BIN / "cadre"
RG = VENV_BIN / "rg"
BARS = {
    "cold_index_s": 5.0,
    "peak_rss_mb": 300.0,
    "reindex_one_edit_ms": 200.0,
    "query_5_words_p95_ms": 20.0,
    "query_1000_chars_p95_ms": 50.0,
}
LONG_QUERY_CHARS = 1000
XDG_VARS = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR")
_WORDS_STOP = STOPWORDS | {
    "also", "all", "any", "see", "used", "use", "using", "returns", "return", "given", "example", "examples",
    "parameters", "param", "self", "none", "true", "false", "other", "same", "only", "each", "more", "one", "two",
    "out", "via", "note", "default", "otherwise", "here", "such",
}  # fmt: skip
_DEF = re.compile(r"^([ \t]*)(?:async[ \t]+)?def[ \t]+([A-Za-z_]\w*)[ \t]*\(", re.M)
_CLASS = re.compile(r"^[ \t]*class[ \t]+([A-Za-z_]\w*)", re.M)
_WORD = re.compile(r"[A-Za-z]{3,}")
_DOC_SECTIONS = {
    "Examples", "Example", "Parameters", "Returns", "Yields", "Raises", "See Also", "Notes", "References",
    "Explanation", "Usage",
}  # fmt: skip


# --- queries built from the corpus --------------------------------------------------------------


@dataclass
class Function:
    path: str
    name: str
    line: int
    body_line: int
    body_src: str
    doc: str
    words: list[str] = field(default_factory=list)


def corpus_functions(corpus: Corpus) -> tuple[list[Function], list[str]]:
    """Python functions with a docstring (for queries) and class names, from the corpus files."""
    functions: list[Function] = []
    classes: set[str] = set()
    for rel in corpus.files:
        if not rel.endswith(".py"):
            continue
        text = (corpus.root / rel).read_text("utf-8", errors="replace")
        lines = text.split("\n")
        classes.update(c for c in _CLASS.findall(text) if len(c) > 3 and not c.startswith("_"))
        for match in _DEF.finditer(text):
            name = match.group(2)
            if name.startswith(("__", "test")) or len(name) < 4:
                continue
            line = text.count("\n", 0, match.start()) + 1
            found = _doc_and_body(lines, line, len(match.group(1)))
            if found is None:
                continue
            doc, body_line = found
            words = list(dict.fromkeys(w.lower() for w in _WORD.findall(doc) if w.lower() not in _WORDS_STOP))
            if len(words) >= 4:
                src = lines[body_line - 1].strip()
                functions.append(Function(rel, name, line, body_line, src, doc, words))
    return functions, sorted(classes)


def _doc_and_body(lines: list[str], def_line: int, indent: int) -> tuple[str, int] | None:
    """The docstring after the `def` on `def_line` and the first code line after it, if any."""
    i = def_line - 1
    while i < len(lines) - 1 and i < def_line + 10 and not lines[i].rstrip().endswith(":"):
        i += 1
    i += 1
    if i >= len(lines):
        return None
    first = lines[i].strip().lstrip("rRuU")
    quote = next((q for q in ('"""', "'''") if first.startswith(q)), None)
    if quote is None:
        return None
    j = i
    if quote not in first[3:]:
        j = next((k for k in range(i + 1, min(len(lines), i + 400)) if quote in lines[k]), -1)
        if j < 0:
            return None
    prose = [first[3:]]
    for line in lines[i + 1 : min(j + 1, i + 8)]:
        stripped = line.strip()
        if stripped.startswith(">>>") or stripped in _DOC_SECTIONS or (stripped and not stripped.strip("=-")):
            break  # prose only: no doctest code or section headers
        prose.append(stripped)
    doc = " ".join(" ".join(prose).replace(quote, " ").split())
    for k in range(j + 1, min(len(lines), j + 60)):
        raw = lines[k]
        stripped = raw.strip()
        if not stripped or stripped.startswith(("#", "@")):
            continue
        if len(raw) - len(raw.lstrip()) <= indent:
            return None
        return doc, k + 1
    return None


def five_word_queries(functions: list[Function], n: int, rng: random.Random) -> list[tuple[str, str]]:
    """(query, identifier): half an identifier plus four docstring words, half five docstring words."""
    out: dict[str, str] = {}
    pool = [f for f in functions if len(f.words) >= 5]
    while len(out) < n:
        fn = rng.choice(pool)
        others = [w for w in fn.words if w != fn.name.lower()]
        if len(out) % 2 == 0 and len(others) >= 4:
            words = [fn.name, *(others[i] for i in sorted(rng.sample(range(len(others)), 4)))]
        else:
            picked = sorted(rng.sample(range(len(fn.words)), 5))
            words = [fn.words[i] for i in picked]
        out.setdefault(" ".join(words), fn.name)
    return list(out.items())


_ERRORS = (
    ("TypeError", "unsupported operand type(s) for *: '{cls}' and 'NoneType'"),
    ("AttributeError", "'{cls}' object has no attribute '{attr}'"),
    ("ValueError", "{name}() got an unexpected value for argument '{attr}'"),
    ("KeyError", "'{attr}'"),
    ("IndexError", "list index out of range"),
    ("NotImplementedError", "{name} is not implemented for {cls}"),
    ("RecursionError", "maximum recursion depth exceeded while calling a Python object"),
)
_PREFIXES = ("/home/alice/src/project/", "/usr/local/lib/python3.12/site-packages/")


def long_queries(functions: list[Function], classes: list[str], n: int, rng: random.Random) -> list[str]:
    """Bug reports of about LONG_QUERY_CHARS characters: prose, a reproducer and a real-looking traceback."""
    by_dir: dict[str, list[Function]] = {}
    for fn in functions:
        by_dir.setdefault(str(PurePosixPath(fn.path).parent), []).append(fn)
    out: list[str] = []
    while len(out) < n:
        fn = rng.choice(functions)
        near = [f for f in by_dir[str(PurePosixPath(fn.path).parent)] if f.path != fn.path] or functions
        outer = rng.sample(near, min(2, len(near)))
        cls = rng.choice(classes) if classes else fn.name
        attr = rng.choice(rng.choice(functions).words)
        err, template = rng.choice(_ERRORS)
        message = template.format(cls=cls, attr=attr, name=fn.name)
        prefix = rng.choice(_PREFIXES)
        module = fn.path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        frames = [f'  File "/home/alice/work/repro.py", line {rng.randint(5, 40)}, in <module>\n    main()\n']
        for frame in [*outer, fn]:
            frames.append(f'  File "{prefix}{frame.path}", line {frame.body_line}, in {frame.name}\n')
            frames.append(f"    {frame.body_src[:100]}\n")
        title = f"{fn.name}() raises {err} with {' '.join(fn.words[:3])}\n\n"
        repro = (
            "Steps to reproduce:\n\n"
            f"    >>> from {module} import {fn.name}\n    >>> {fn.name}({rng.choice(fn.words)})\n\n"
        )
        traceback = "Traceback (most recent call last):\n" + "".join(frames) + f"{err}: {message}\n\n"
        tail = "This worked in the previous release. Python 3.12.3 on Linux x86_64.\n"
        fixed = len(title) + len(repro) + len(traceback) + len(tail) + 2
        prose = [f"When I call `{fn.name}` it fails instead of returning a result.", fn.doc]
        prose += [f.doc for f in outer]
        while len(" ".join(prose)) < LONG_QUERY_CHARS - fixed:
            prose.append(rng.choice(functions).doc)
        text = " ".join(prose)[: max(0, LONG_QUERY_CHARS - fixed)]
        text = text.rsplit(" ", 1)[0] if " " in text else text
        out.append(title + text + "\n\n" + repro + traceback + tail)
    return out


# --- measurements ---------------------------------------------------------------------------------


def timed_ms(fn, *args, **kwargs) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return (time.perf_counter() - started) * 1000, result


def _read_kb(path: str, keys: tuple[str, ...]) -> dict[str, int]:
    out = {}
    try:
        with open(path) as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in keys:
                    out[key] = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return out


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        tree += frontier
    return tree


class TreeSampler(threading.Thread):
    """Peak summed RSS and PSS of a process tree, and each process's VmHWM, sampled from /proc."""

    def __init__(self, pid: int, interval: float = 0.02):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.stop = threading.Event()
        self.peak_rss_kb = self.peak_pss_kb = self.samples = self.max_workers = 0
        self.hwm_kb: dict[int, int] = {}

    def run(self) -> None:
        while not self.stop.is_set():
            rss = pss = 0
            pids = _descendants(self.pid)
            for pid in pids:
                status = _read_kb(f"/proc/{pid}/status", ("VmRSS", "VmHWM"))
                rss += status.get("VmRSS", 0)
                if "VmHWM" in status:
                    self.hwm_kb[pid] = max(self.hwm_kb.get(pid, 0), status["VmHWM"])
                pss += _read_kb(f"/proc/{pid}/smaps_rollup", ("Pss",)).get("Pss", 0)
            self.peak_rss_kb = max(self.peak_rss_kb, rss)
            self.peak_pss_kb = max(self.peak_pss_kb, pss)
            self.max_workers = max(self.max_workers, len(pids) - 1)
            self.samples += 1
            self.stop.wait(self.interval)


def memory_run(corpus: Corpus, query: str, cache_home: Path, env: dict[str, str]) -> dict[str, Any]:
    """Cold index in a separate `cadre search` process; its peak memory and wall time."""
    cache_home.mkdir(parents=True, exist_ok=True)
    out_path = cache_home.parent / "memory-run.json"
    child_env = {**env, "XDG_CACHE_HOME": str(cache_home)}
    child_env.pop("CADRE_SEARCH_INDEX_DIR", None)
    started = time.perf_counter()
    with out_path.open("wb") as out:
        proc = subprocess.Popen(
            [str(CADRE), "search", "--root", str(corpus.root), "--json", query],
            stdout=out,
            stderr=subprocess.PIPE,
            env=child_env,
        )
        sampler = TreeSampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop.set()
        sampler.join()
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"`cadre search` failed ({proc.returncode}): {stderr[-2000:]}")
    result = json.loads(out_path.read_text())
    workers = {pid: kb for pid, kb in sampler.hwm_kb.items() if pid != proc.pid}
    return {
        "command": "cadre search --root CORPUS --json QUERY (fresh XDG_CACHE_HOME)",
        "wall_s": wall,
        "indexed_files": result["index"]["files"],
        "peak_tree_rss_mb": sampler.peak_rss_kb / 1024,
        "peak_tree_pss_mb": sampler.peak_pss_kb / 1024,
        "main_vmhwm_mb": sampler.hwm_kb.get(proc.pid, 0) / 1024,
        "largest_worker_vmhwm_mb": max(workers.values(), default=0) / 1024,
        "workers_seen": len(workers),
        "wait4_maxrss_mb": usage.ru_maxrss / 1024,
        "upper_bound_mb": (usage.ru_maxrss + sum(workers.values())) / 1024,
        "samples": sampler.samples,
    }


def cli_warm_runs(corpus: Corpus, queries: list[str], cache_home: Path, env: dict[str, str]) -> list[float]:
    """Wall time of `cadre search --json` on an index that is already built (spawn + import + query)."""
    child_env = {**env, "XDG_CACHE_HOME": str(cache_home)}
    child_env.pop("CADRE_SEARCH_INDEX_DIR", None)
    times = []
    for query in queries:
        started = time.perf_counter()
        subprocess.run(
            [str(CADRE), "search", "--root", str(corpus.root), "--json", query],
            check=True,
            capture_output=True,
            env=child_env,
        )
        times.append((time.perf_counter() - started) * 1000)
    return times


def rg_ms(args: list[str]) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run([str(RG), "--no-config", *args], capture_output=True, check=False)
    elapsed = (time.perf_counter() - started) * 1000
    if done.returncode not in (0, 1):
        raise SystemExit(f"rg failed: {done.stderr.decode(errors='replace')}")
    return elapsed, done.stdout.count(b"\n")


def append_line(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(line)


def engine_commit() -> str:
    """This repository's commit, marked dirty when the search engine has local changes."""
    repo = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, check=True)
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--", "servers/search"], capture_output=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.decode().strip() + ("-dirty" if dirty.stdout.strip() else "")


# --- profiling (diagnostics, --profile) ---------------------------------------------------------


def profile_block(label: str, fn, out_dir: Path, top: int = 18) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    profiler.dump_stats(out_dir / f"{label}.prof")
    buf = io.StringIO()
    stats = pstats.Stats(profiler, stream=buf)
    stats.sort_stats("tottime").print_stats(top)
    body = buf.getvalue()
    body = body[body.find("   ncalls") :] if "   ncalls" in body else body
    return f"### {label} (by own time)\n\n```\n{body.rstrip()}\n```\n"


def run_profiles(engine, corpus: Corpus, short: list[str], long: list[str], tmp: Path) -> str:
    import cadre_search.index as index_module
    from cadre_search.engine import Engine

    out_dir = tmp / "profiles"
    out_dir.mkdir(exist_ok=True)
    parts = []
    saved = index_module.PARALLEL_MIN_FILES
    index_module.PARALLEL_MIN_FILES = 10**9  # serial, so cProfile sees parsing and storing
    try:
        serial = Engine(corpus.root, index_path=tmp / "index-profile.sqlite")
        parts.append(profile_block("cold_index_serial", serial.refresh, out_dir))
        serial.index.close()
    finally:
        index_module.PARALLEL_MIN_FILES = saved
    parts.append(profile_block("staleness_check_x50", lambda: [engine.refresh() for _ in range(50)], out_dir))
    parts.append(profile_block("query_5_words_x50", lambda: [engine.search(q) for q in short[:50]], out_dir))
    parts.append(profile_block("query_1000_chars_x50", lambda: [engine.search(q) for q in long[:50]], out_dir))
    edited = [corpus.root / p for p in corpus.files if p.endswith(".py")][:10]

    def edits() -> None:
        for i, path in enumerate(edited):
            append_line(path, f"\n# profile edit {i}\n")
            engine.refresh()

    parts.append(profile_block("reindex_one_edit_x10", edits, out_dir))
    return "\n".join(parts)


# --- report ---------------------------------------------------------------------------------------


def verdict(value: float, bar: float) -> str:
    return "PASS" if value <= bar else "FAIL"


def fmt_ms(value: float) -> str:
    return f"{value:,.1f} ms" if value < 1000 else f"{value / 1000:,.2f} s"


def build_table(m: dict[str, Any]) -> str:
    cold, q5, ql, edit = m["cold_index_ms"], m["query_5_words_ms"], m["query_1000_chars_ms"], m["reindex_one_edit_ms"]
    mem = m["memory"]
    rows = [
        [
            "Cold index: Engine() + first refresh(), in-process",
            cold["n"],
            fmt_ms(cold["median_ms"]),
            f"max {fmt_ms(cold['max_ms'])}",
            "median ≤ 5 s",
            verdict(cold["median_ms"] / 1000, BARS["cold_index_s"]),
        ],
        [
            "Peak RSS, cold index in `cadre search`: bound = max process + every worker's peak",
            1,
            f"{mem['upper_bound_mb']:.0f} MB",
            "",
            "≤ 300 MB",
            verdict(mem["upper_bound_mb"], BARS["peak_rss_mb"]),
        ],
        [
            "Re-index after a one-file edit: refresh()",
            edit["n"],
            fmt_ms(edit["median_ms"]),
            fmt_ms(edit["p95_ms"]),
            "median ≤ 200 ms",
            verdict(edit["median_ms"], BARS["reindex_one_edit_ms"]),
        ],
        [
            "Warm query, 5 words: search() incl. staleness check",
            q5["n"],
            fmt_ms(q5["median_ms"]),
            fmt_ms(q5["p95_ms"]),
            "p95 ≤ 20 ms",
            verdict(q5["p95_ms"], BARS["query_5_words_p95_ms"]),
        ],
        [
            f"Warm query, ~{LONG_QUERY_CHARS:,} chars: search() incl. staleness check",
            ql["n"],
            fmt_ms(ql["median_ms"]),
            fmt_ms(ql["p95_ms"]),
            "p95 ≤ 50 ms",
            verdict(ql["p95_ms"], BARS["query_1000_chars_p95_ms"]),
        ],
    ]

    def info(label: str, s: dict[str, float]) -> list[Any]:
        return [label, s["n"], fmt_ms(s["median_ms"]), fmt_ms(s["p95_ms"]), "", "info"]

    rows.append(
        [
            "Cold index CPU time: main process / parse workers (median)",
            cold["n"],
            f"{percentile(cold['cpu_s_main'], 50):.2f} s / {percentile(cold['cpu_s_workers'], 50):.2f} s",
            "",
            "",
            "info",
        ]
    )
    rows += [
        info("Staleness check alone: refresh() with nothing changed", m["staleness_check_ms"]),
        info("Ranking only, 5 words (no staleness check)", m["rank_only_5_words_ms"]),
        info(f"Ranking only, ~{LONG_QUERY_CHARS:,} chars (no staleness check)", m["rank_only_1000_chars_ms"]),
        info(
            f"5 words, last one the package name `{m['query_5_words_with_package_ms']['package']}` (in ~every path)",
            m["query_5_words_with_package_ms"],
        ),
        info("Edit one file, then search() (user path)", m["edit_then_search_ms"]),
        info("Same literal: engine search()", m["literal_engine_ms"]),
        info("Same literal: `rg -F -l` (subprocess)", m["literal_rg_files_ms"]),
        info("Same literal: `rg -F -n` (subprocess)", m["literal_rg_lines_ms"]),
        info("`cadre search --json`, warm index (spawn + import + query)", m["cli_warm_ms"]),
        [
            "`cadre search --json`, cold (spawn + import + index + query)",
            1,
            fmt_ms(mem["wall_s"] * 1000),
            "",
            "",
            "info",
        ],
        [
            "Memory detail: sampled tree RSS / tree PSS / largest process (wait4) / largest worker",
            1,
            f"{mem['peak_tree_rss_mb']:.0f} / {mem['peak_tree_pss_mb']:.0f} / "
            f"{mem['wait4_maxrss_mb']:.0f} / {mem['largest_worker_vmhwm_mb']:.0f} MB",
            "",
            "",
            "info",
        ],
    ]
    return markdown_table(["Measure", "n", "median", "p95", "bar", "result"], rows)


# --- main -------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--git-dir", type=Path, required=True, help="bare repository or checkout to take files from")
    parser.add_argument("--ref", default="HEAD", help="commit, tag or branch (default HEAD)")
    parser.add_argument("--files", type=int, default=2000, help="target number of files")
    parser.add_argument("--mb", type=float, default=30.0, help="target corpus size in MB (10^6 bytes)")
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--queries", type=int, default=150, help="queries of each kind (>= 100)")
    parser.add_argument("--edits", type=int, default=25, help="one-file edits (>= 20)")
    parser.add_argument("--rg-runs", type=int, default=25, help="literal queries for engine vs ripgrep (>= 20)")
    parser.add_argument("--cli-runs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="append cProfile summaries")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (corpus, indexes, profiles)")
    parser.add_argument("--out", type=Path, default=None, help="results JSON (default bench/results/search_speed.json)")
    args = parser.parse_args(argv)

    git_dir = resolve_git_dir(args.git_dir)
    base = Path(tempfile.mkdtemp(prefix="cadre-search-speed-"))
    for var in XDG_VARS:
        (base / var.lower()).mkdir(mode=0o700)
        os.environ[var] = str(base / var.lower())
    os.environ.pop("CADRE_SEARCH_INDEX_DIR", None)
    env = dict(os.environ)
    rng = random.Random(args.seed)
    load_start = os.getloadavg()
    if load_start[0] > 0.5 * (os.cpu_count() or 1):
        print(
            f"warning: load average {load_start[0]:.1f} on {os.cpu_count()} CPUs; other work will skew the timings",
            file=sys.stderr,
        )
    try:
        print(f"corpus: {git_dir} @ {args.ref} -> {base / 'corpus'}", file=sys.stderr)
        corpus = materialize(
            git_dir, args.ref, base / "corpus", target_files=args.files, target_bytes=int(args.mb * 1e6)
        )
        print(f"  {len(corpus.files):,} files, {corpus.bytes / 1e6:.1f} MB", file=sys.stderr)
        functions, classes = corpus_functions(corpus)
        if len(functions) < 20:
            raise SystemExit("the corpus has too few documented Python functions to build queries from")
        short = five_word_queries(functions, args.queries, rng)
        long = long_queries(functions, classes, args.queries, rng)
        metrics: dict[str, Any] = {}

        print("memory: cold index in a separate `cadre search` process", file=sys.stderr)
        cli_cache = base / "cli-cache"
        metrics["memory"] = memory_run(corpus, short[0][0], cli_cache, env)
        warm_queries = [q for q, _ in short[1 : 1 + args.cli_runs]]
        metrics["cli_warm_ms"] = summary(cli_warm_runs(corpus, warm_queries, cli_cache, env))

        from cadre_search.engine import Engine
        from cadre_search.query import plan
        from cadre_search.rank import search as rank

        print("cold index, in-process", file=sys.stderr)
        cold, cpu_main, cpu_workers, engine, stats = [], [], [], None, None
        for run in range(args.cold_runs):
            if engine is not None:
                engine.index.close()
            path = base / f"index-{run}.sqlite"
            before = os.times()
            started = time.perf_counter()
            engine = Engine(corpus.root, index_path=path)
            stats = engine.refresh()
            cold.append((time.perf_counter() - started) * 1000)
            after = os.times()
            cpu_main.append(after.user + after.system - before.user - before.system)
            cpu_workers.append(
                after.children_user + after.children_system - before.children_user - before.children_system
            )
        assert engine is not None and stats is not None
        metrics["cold_index_ms"] = {
            **summary(cold),
            "runs_ms": cold,
            "cpu_s_main": cpu_main,
            "cpu_s_workers": cpu_workers,
        }
        metrics["indexed_files"] = stats.files
        index_path = engine.index.path
        metrics["index_mb"] = (
            sum(p.stat().st_size for p in index_path.parent.glob(index_path.name + "*") if p.is_file()) / 1e6
        )
        metrics["chunks"] = engine.index.query("SELECT COUNT(*) FROM chunks")[0][0]

        print("warm queries", file=sys.stderr)
        for q, _ in short[:5]:
            engine.search(q)
        for q in long[:5]:
            engine.search(q)
        metrics["staleness_check_ms"] = summary([timed_ms(engine.refresh)[0] for _ in range(50)])
        for key, queries in (("query_5_words_ms", [q for q, _ in short]), ("query_1000_chars_ms", long)):
            times, refreshed = [], 0
            for q in queries:
                ms, result = timed_ms(engine.search, q, limit=10)
                times.append(ms)
                refreshed += result.index["refreshed"]
            metrics[key] = {**summary(times), "refreshed_files": refreshed}
        package = max(
            {p.split("/", 1)[0] for p in corpus.files if "/" in p and p.endswith(".py")},
            key=lambda top: sum(p.startswith(top + "/") for p in corpus.files),
        )
        with_package = [" ".join([*q.split()[:4], package]) for q, _ in short[:30]]
        metrics["query_5_words_with_package_ms"] = {
            **summary([timed_ms(engine.search, q, limit=10)[0] for q in with_package]),
            "package": package,
        }
        metrics["query_1000_chars_ms"]["chars_median"] = percentile([len(q) for q in long], 50)
        for key, queries in (("rank_only_5_words_ms", [q for q, _ in short]), ("rank_only_1000_chars_ms", long)):
            metrics[key] = summary([timed_ms(lambda q=q: rank(engine.index, plan(q), limit=10))[0] for q in queries])

        print("engine vs ripgrep on the same literals", file=sys.stderr)
        literals = list(dict.fromkeys(ident for _, ident in short))[: args.rg_runs]
        engine_ms, rg_files, rg_lines, rg_hits = [], [], [], []
        for literal in literals:
            engine_ms.append(timed_ms(engine.search, literal, limit=10)[0])
            ms, count = rg_ms(["-F", "-l", "--no-require-git", "--", literal, str(corpus.root)])
            rg_files.append(ms)
            rg_hits.append(count)
            rg_lines.append(rg_ms(["-F", "-n", "--no-require-git", "--", literal, str(corpus.root)])[0])
        metrics["literal_engine_ms"] = summary(engine_ms)
        metrics["literal_rg_files_ms"] = {**summary(rg_files), "files_matched_median": percentile(rg_hits, 50)}
        metrics["literal_rg_lines_ms"] = summary(rg_lines)
        metrics["literals"] = literals

        print("one-file edits", file=sys.stderr)
        editable = [p for p in corpus.files if p.endswith(".py")] or corpus.files
        picked = rng.sample(editable, min(args.edits, len(editable)))
        edit_ms, edit_sizes, bad = [], [], 0
        for i, rel in enumerate(picked):
            path = corpus.root / rel
            append_line(path, f"\n# cadre bench edit {i}\n")
            ms, st = timed_ms(engine.refresh)
            edit_ms.append(ms)
            edit_sizes.append(path.stat().st_size)
            bad += st.refreshed != 1
        then_search, found = [], 0
        for i, rel in enumerate(picked):
            marker = f"benchprobe{i:03d}"
            append_line(corpus.root / rel, f"# {marker}\n")
            ms, result = timed_ms(engine.search, f"{marker} appended marker line edit", limit=10)
            then_search.append(ms)
            found += bool(result.hits) and result.hits[0].path == rel
        metrics["reindex_one_edit_ms"] = {
            **summary(edit_ms),
            "file_bytes_median": percentile(edit_sizes, 50),
            "refreshes_not_exactly_one_file": bad,
        }
        metrics["edit_then_search_ms"] = {**summary(then_search), "marker_top_hit": found}

        bars = {
            "cold_index_s": metrics["cold_index_ms"]["median_ms"] / 1000,
            "peak_rss_mb": metrics["memory"]["upper_bound_mb"],
            "reindex_one_edit_ms": metrics["reindex_one_edit_ms"]["median_ms"],
            "query_5_words_p95_ms": metrics["query_5_words_ms"]["p95_ms"],
            "query_1000_chars_p95_ms": metrics["query_1000_chars_ms"]["p95_ms"],
        }
        verdicts = {k: {"value": v, "bar": BARS[k], "pass": v <= BARS[k]} for k, v in bars.items()}
        table = build_table(metrics)
        info = corpus.info()
        load_after = os.getloadavg()
        print()
        print(
            f"Corpus: {PurePosixPath(str(git_dir)).parent.name} @ {corpus.commit[:12]}: "
            f"{info['files']:,} files, {info['mb']} MB ({metrics['indexed_files']:,} indexed, "
            f"{metrics['chunks']:,} chunks, index {metrics['index_mb']:.0f} MB); {os.cpu_count()} CPUs, "
            f"load average {load_start[0]:.1f} at start, {load_after[0]:.1f} at end"
        )
        print()
        print(table)
        profiles = ""
        if args.profile:
            print("profiling", file=sys.stderr)
            profiles = run_profiles(engine, corpus, [q for q, _ in short], long, base)
            print()
            print(profiles)
        engine.index.close()
        data = {
            "environment": {
                **environment_info(),
                "engine_commit": engine_commit(),
                "loadavg_start": load_start,
                "loadavg_end": load_after,
            },
            "corpus": info,
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "bars": verdicts,
            "metrics": metrics,
            "examples": {"five_words": [q for q, _ in short[:5]], "long": long[:2]},
            "table": table,
        }
        if profiles:
            data["profiles"] = profiles
        out = write_results("search_speed", data, args.out)
        print(f"\nresults: {out}", file=sys.stderr)
        return 0 if all(v["pass"] for v in verdicts.values()) else 1
    finally:
        if args.keep:
            print(f"kept {base}", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
