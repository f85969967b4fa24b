"""What an OpenAI-compatible endpoint was found to accept, per (base URL, model).

Kept in memory for the process and in a small JSON file in the user cache dir, so a restart does not pay
for the refused requests again. Entries older than a week are asked again (the server may have been
upgraded); `[providers.openai_compatible] structured_output` / `tools` pin the answer instead.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

StructuredOutput = Literal["json_schema", "json_object", "prompt"]
STRUCTURED_OUTPUTS: tuple[StructuredOutput, ...] = ("json_schema", "json_object", "prompt")
"""Tried in this order: the schema as response_format, then json_object with the schema in the prompt,
then the schema in the prompt only."""
MAX_AGE_S = 7 * 86400


@dataclass
class Accepts:
    structured_output: StructuredOutput = "json_schema"
    tools: bool = True


_known: dict[str, Accepts] = {}


def cache_file() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("cadre")) / "openai_compatible.json"


def accepts(base_url: str, model: str) -> Accepts:
    """What (base_url, model) accepts as far as is known: the best unless a refusal was remembered."""
    key = f"{base_url} {model}"
    if key not in _known:
        entry = _read().get(key)
        fresh = isinstance(entry, dict) and time.time() - entry.get("checked", 0) < MAX_AGE_S
        try:
            _known[key] = Accepts(entry["structured_output"], bool(entry["tools"])) if fresh and entry else Accepts()
        except (KeyError, TypeError):
            _known[key] = Accepts()
        if _known[key].structured_output not in STRUCTURED_OUTPUTS:
            _known[key] = Accepts()
    return _known[key]


def remember(base_url: str, model: str, found: Accepts) -> None:
    """Keep `found` for this process and in the cache file (best effort: a read-only disk only costs time)."""
    key = f"{base_url} {model}"
    _known[key] = found
    path = cache_file()
    entries = _read()
    entries[key] = {**asdict(found), "checked": time.time()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}")
        temp.write_text(json.dumps(entries, indent=1), "utf-8")
        os.replace(temp, path)
    except OSError:
        pass


def forget() -> None:
    """Drop what this process knows (the cache file stays)."""
    _known.clear()


def _read() -> dict[str, Any]:
    try:
        data = json.loads(cache_file().read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
