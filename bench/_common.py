"""Helpers shared by the benchmark scripts: statistics, tables, results, isolation."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

# What an MCP host passes to a stdio server (mcp's `get_default_environment`).
_HOST_ENV_VARS = ("HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LANG", "LC_ALL")
_XDG_VARS = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR")


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median, p90, p95, min, max and mean of samples in ms."""
    return {
        "n": len(values),
        "median_ms": percentile(values, 50),
        "p90_ms": percentile(values, 90),
        "p95_ms": percentile(values, 95),
        "min_ms": min(values) if values else math.nan,
        "max_ms": max(values) if values else math.nan,
        "mean_ms": sum(values) / len(values) if values else math.nan,
    }


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table; the first column is left-aligned, the rest right-aligned."""
    cells = [[_fmt(c) for c in row] for row in rows]
    align = [":---", *["---:" for _ in headers[1:]]]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def isolated_dirs(prefix: str) -> tuple[tempfile.TemporaryDirectory[str], dict[str, str]]:
    """A temp dir plus XDG_* vars pointing inside it, so nothing touches the user's dirs."""
    tmp = tempfile.TemporaryDirectory(prefix=prefix)
    base = Path(tmp.name)
    xdg = {}
    for var in _XDG_VARS:
        folder = base / var.lower()
        folder.mkdir(mode=0o700)
        xdg[var] = str(folder)
    return tmp, xdg


def host_env(extra: dict[str, str]) -> dict[str, str]:
    """The small environment an MCP host gives a stdio server, plus `extra`; no CADRE_* or keys."""
    env = {k: v for k in _HOST_ENV_VARS if (v := os.environ.get(k)) is not None}
    env.update(extra)
    return env


def environment_info() -> dict[str, Any]:
    def ver(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "packages": {p: ver(p) for p in ("mcp", "openai", "cadre-core", "structlog", "uvicorn")},
    }


def write_results(name: str, data: dict[str, Any], out: Path | None = None) -> Path:
    """Write `data` as JSON to bench/results/<name>.json (or `out`) and return the path."""
    path = out or RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path
