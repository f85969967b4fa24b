"""List fix commits that could carry a prose bug report, with the issue numbers they cite.

Helper for writing `prose/<owner>+<name>.jsonl` by hand: it applies `build_queries.py`'s
selection rules (fix commit, 1-5 modified non-test library files, a real code change) and
prints one JSON line per candidate with the `#N` references of its message, newest first.

    .venv/bin/python bench/search/prose_candidates.py --repos-dir /work/.mirror psf/black
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from _repos import resolve_git_dir
from build_queries import find_candidates

_REF = re.compile(r"(?<![\w/])#(\d+)\b")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("repo", help="owner/name")
    ap.add_argument("--repos-dir", type=Path, required=True)
    ap.add_argument("--rev", default="HEAD")
    ap.add_argument("--refs-only", action="store_true", help="only commits whose message cites #N")
    args = ap.parse_args()
    git_dir = resolve_git_dir(args.repos_dir, args.repo)
    for cand in reversed(find_candidates(args.repo, git_dir, args.rev)):
        refs = sorted({int(n) for n in _REF.findall(cand.message)})
        if args.refs_only and not refs:
            continue
        row = {"commit": cand.commit, "parent": cand.parent, "refs": refs, "gold": cand.gold, "subject": cand.subject}
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
