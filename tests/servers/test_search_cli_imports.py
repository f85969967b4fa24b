"""`cadre search` imports only what a query needs: no logging stack, no secret scanner, no MCP."""

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("structlog", "detect_secrets", "requests", "mcp", "rich", "httpx", "pydantic", "pathspec",
         "concurrent.futures.process")  # fmt: skip
PROBE = """
import contextlib, io, json, sys
from cadre_app.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(["search", "--root", sys.argv[1], "--json", "parse_config timeout"])
print(json.dumps({"code": code, "hits": [h["path"] for h in json.loads(out.getvalue())["hits"]],
                  "loaded": sorted(m for m in %r if m in sys.modules)}))
"""


def test_a_warm_search_loads_no_heavy_module(tmp_path: Path):
    root = tmp_path / "repo"
    root.mkdir()
    (root / "config.py").write_text("def parse_config(text, timeout=3):\n    return dict(timeout=timeout)\n")
    (root / "other.py").write_text("def unrelated():\n    return 1\n")
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    runs = []
    for _ in range(2):  # the first run builds the index and the redaction-rules cache; the second is warm
        done = subprocess.run(
            [sys.executable, "-c", PROBE % (HEAVY,), str(root)], capture_output=True, text=True, env=env, check=True
        )
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    warm = runs[1]
    assert warm["code"] == 0 and warm["hits"][0] == "config.py"
    assert warm["loaded"] == []
