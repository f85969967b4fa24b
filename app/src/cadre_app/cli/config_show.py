"""`cadre config show`: the merged config, secrets masked, with each value's source."""

from __future__ import annotations

import json
import os
from typing import Any

from cadre_app.cli.render import Column, layout
from cadre_core.config import load_config
from cadre_core.storage import redact_url

_SECRET_WORDS = ("secret", "token", "password", "api_key")


def _flatten(value: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    if isinstance(value, dict):
        out = []
        for key, sub in value.items():
            out += _flatten(sub, (*prefix, str(key)))
        return out
    return [(prefix, value)]


def _display(path: tuple[str, ...], value: Any) -> Any:
    last = path[-1] if path else ""
    if last == "api_key_env":
        return [f"{v} ({'set' if os.environ.get(v) else 'unset'})" for v in value]
    if any(w in last for w in _SECRET_WORDS) and value:
        return "****"
    if isinstance(value, str) and "://" in value:
        return redact_url(value)  # a URL's password ([storage] url, a base_url with credentials)
    return value


def rows(args: Any) -> list[dict[str, Any]]:
    loaded = load_config(args.root)
    data = loaded.config.model_dump(mode="json", exclude_none=True)
    return [
        {"key": ".".join(path), "value": _display(path, value), "source": loaded.source_of(path)}
        for path, value in _flatten(data)
    ]


def render(console: Any, table_rows: list[dict[str, Any]]) -> None:
    """Key, value and source as a table, or one block per key when that would not fit uncut."""
    cells = [
        [row["key"], row["value"] if isinstance(row["value"], str) else json.dumps(row["value"]), row["source"]]
        for row in table_rows
    ]
    columns = (Column("key"), Column("value", prose=True), Column("source"))
    console.print(layout(console, columns, cells, title="Merged config"))


def run(args: Any) -> int:
    table_rows = rows(args)
    if args.json:
        print(json.dumps(table_rows, indent=2))
        return 0
    from rich.console import Console

    render(Console(), table_rows)
    return 0
