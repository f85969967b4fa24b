"""The librarian's offline sources on real installed packages (this checkout's .venv), no model.

Quality: for 16 labelled questions about installed packages (a question, the package, the file(s) that
answer it), where does the expected file rank in `search_installed` (the Search engine over the package's
own files), against a baseline measured in the same run: a naive scan that reads every source file of the
package and ranks files by how many query terms they contain, the way an agent's grep loop would.

Speed: per question, search_installed cold (first index of the package) and warm, and the naive scan;
read_source of an installed file; find_examples' local scan across the whole environment. Medians and
ratios; no timing is asserted.

    .venv/bin/python bench/librarian.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time

from _common import REPO_ROOT, RESULTS_DIR, environment_info, markdown_table

QUESTIONS = [
    ("rich", "how does the progress bar render its columns and estimate the time remaining", ["rich/progress.py"]),
    ("rich", "syntax highlighting of code with a pygments lexer and line numbers", ["rich/syntax.py"]),
    ("pydantic", "field_validator decorator with mode before or after", ["pydantic/functional_validators.py"]),
    ("structlog", "render the event dict as JSON", ["structlog/processors.py"]),
    ("tomlkit", "parse a TOML document keeping comments and whitespace", ["tomlkit/parser.py"]),
    ("jsonschema", "create a validator class for a meta schema and iterate errors", ["jsonschema/validators.py"]),
    ("platformdirs", "user cache dir from XDG_CACHE_HOME on linux", ["platformdirs/unix.py"]),
    ("anyio", "CancelScope deadline and shield", ["anyio/_core/_tasks.py", "anyio/_backends/_asyncio.py"]),
    ("httpx2", "follow redirects and build the redirect request", ["httpx2/_client.py"]),
    ("httpx2", "parse server-sent events", ["httpx2/_sse.py"]),
    ("detect-secrets", "scan a file for secrets with the plugins", ["detect_secrets/core/scan.py"]),
    ("pathspec", "translate gitignore patterns into regular expressions",
     ["pathspec/patterns/gitignore/basic.py", "pathspec/patterns/gitignore/spec.py",
      "pathspec/patterns/gitignore/base.py", "pathspec/patterns/gitwildmatch.py"]),
    ("openai", "retry with exponential backoff honouring the retry-after header", ["openai/_base_client.py"]),
    ("anthropic", "stream messages and accumulate text deltas", ["anthropic/lib/streaming/_messages.py"]),
    ("genai-prices", "calculate the price of a request from usage and model", ["genai_prices/__init__.py"]),
    ("watchfiles", "watch a directory for changes and yield sets of changes", ["watchfiles/main.py"]),
]  # fmt: skip
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")


def naive_rank(installed, name: str, question: str) -> list[str]:
    """Files of the package ranked by how many distinct query words they contain (then total hits)."""
    package = installed.find(name)
    terms = {w.lower() for w in WORD.findall(question)} - {"the", "and", "with", "how", "does", "its", "from", "for"}
    scored = []
    for file in package.source_files():
        try:
            text = file.read_text("utf-8", errors="replace").lower()
        except OSError:
            continue
        distinct = sum(1 for t in terms if t in text)
        if distinct:
            scored.append((distinct, sum(text.count(t) for t in terms), installed.relative(package, file)))
    scored.sort(key=lambda s: (-s[0], -s[1], s[2]))
    return [path for _, _, path in scored]


def rank_of(paths: list[str], expected: list[str]) -> int | None:
    unique = list(dict.fromkeys(paths))
    return next((i + 1 for i, p in enumerate(unique) if p in expected), None)


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ["CADRE_SEARCH_INDEX_DIR"] = tempfile.mkdtemp(prefix="cadre-bench-index-")  # cold means cold
    from cadre_librarian.examples import scan_installed
    from cadre_librarian.installed import Installed, search_package

    installed = Installed([REPO_ROOT], environ={})
    installed.refresh()
    rows, results = [], []
    for name, question, expected in QUESTIONS:
        hits, cold_ms = timed(lambda n=name, q=question: search_package(installed, n, q, 10))
        warm = [timed(lambda n=name, q=question: search_package(installed, n, q, 10))[1] for _ in range(args.repeat)]
        naive, _ = timed(lambda n=name, q=question: naive_rank(installed, n, q))
        naive_ms = [timed(lambda n=name, q=question: naive_rank(installed, n, q))[1] for _ in range(args.repeat)]
        ours, base = rank_of([h.path for h in hits], expected), rank_of(naive, expected)
        results.append({"package": name, "question": question, "rank": ours, "naive_rank": base, "cold_ms": cold_ms,
                        "warm_ms": statistics.median(warm), "naive_ms": statistics.median(naive_ms)})  # fmt: skip
        rows.append([name, question[:48], ours or "-", base or "-", f"{cold_ms:.0f}",
                     f"{statistics.median(warm):.1f}", f"{statistics.median(naive_ms):.1f}"])  # fmt: skip
        print(f"{name:15} ours={ours} naive={base} cold={cold_ms:.0f}ms", file=sys.stderr)

    def acc(key: str, k: int) -> float:
        return sum(1 for r in results if r[key] and r[key] <= k) / len(results)

    def mrr(key: str) -> float:
        return sum(1 / r[key] for r in results if r[key]) / len(results)

    read_ms = [timed(lambda: installed.read("rich", "rich/progress.py", 1, 200))[1] for _ in range(20)]
    (examples, _), scan_ms = timed(lambda: scan_installed(installed, "field_validator(", "python", 10))
    summary = {
        "acc@1": (acc("rank", 1), acc("naive_rank", 1)),
        "acc@3": (acc("rank", 3), acc("naive_rank", 3)),
        "mrr": (mrr("rank"), mrr("naive_rank")),
        "warm_ms_median": statistics.median(r["warm_ms"] for r in results),
        "naive_ms_median": statistics.median(r["naive_ms"] for r in results),
        "cold_ms_median": statistics.median(r["cold_ms"] for r in results),
        "read_source_ms_median": statistics.median(read_ms),
        "find_examples_scan_ms": scan_ms,
        "find_examples_found": len(examples),
        "packages_installed": len(installed.packages()),
    }
    print(markdown_table(["package", "question", "rank", "naive rank", "cold ms", "warm ms", "naive ms"], rows))
    print()
    print(markdown_table(["metric", "search_installed", "naive scan", "ratio"], [
        ["Acc@1", f"{summary['acc@1'][0]:.3f}", f"{summary['acc@1'][1]:.3f}",
         f"{summary['acc@1'][0] / max(summary['acc@1'][1], 1e-9):.2f}x"],
        ["Acc@3", f"{summary['acc@3'][0]:.3f}", f"{summary['acc@3'][1]:.3f}",
         f"{summary['acc@3'][0] / max(summary['acc@3'][1], 1e-9):.2f}x"],
        ["MRR", f"{summary['mrr'][0]:.3f}", f"{summary['mrr'][1]:.3f}",
         f"{summary['mrr'][0] / max(summary['mrr'][1], 1e-9):.2f}x"],
        ["median ms per question (warm)", f"{summary['warm_ms_median']:.1f}", f"{summary['naive_ms_median']:.1f}",
         f"{summary['naive_ms_median'] / summary['warm_ms_median']:.1f}x faster"],
    ]))  # fmt: skip
    print(f"\nfirst search of a package (index build) median {summary['cold_ms_median']:.0f} ms; "
          f"read_source median {summary['read_source_ms_median']:.2f} ms; find_examples local scan of "
          f"{summary['packages_installed']} packages {scan_ms:.0f} ms ({len(examples)} examples)")  # fmt: skip
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / "librarian.json"
    out.write_text(json.dumps({"env": environment_info(), "summary": summary, "questions": results}, indent=2))
    print(f"JSON: {out}")


if __name__ == "__main__":
    main()
