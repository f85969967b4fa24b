"""Tables that never cut a value: a table when every cell fits the console whole, else one block per row.

Cells are plain text (never rich markup). A column is an atom (ids, model and detector names, numbers: shown
whole on one line, `no_wrap`) or prose (wrapped at spaces, long words folded, never cut). A table is used only
when its atoms fit side by side with `PROSE_MIN_WIDTH` per prose column; otherwise each row becomes a block:
its first cell as a heading, then `column  value` lines, so an 80-column terminal still shows every id whole
and it pastes into `cadre trace`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

PROSE_MIN_WIDTH = 24
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""C0 (but tab and newline), DEL and C1: what a terminal would act on rather than show."""


def plain(value: Any) -> str:
    """`value` as text a terminal shows as is: control characters (a model's ESC sequences in a ledger message,
    which rich passes through) are written out as `\\x1b`."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


@dataclass(frozen=True)
class Column:
    header: str
    justify: Literal["left", "center", "right"] = "left"
    prose: bool = False


def layout(
    console: Any,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None = None,
    caption: str | None = None,
) -> Any:
    """`rows` as a table if it fits `console.width` uncut, else as blocks (see the module docstring)."""
    from rich.cells import cell_len

    rows = [[plain(cell) for cell in row] for row in rows]
    title = plain(title) if title is not None else None
    widths = [
        PROSE_MIN_WIDTH if col.prose else max(cell_len(str(v)) for v in [col.header, *(r[i] for r in rows)])
        for i, col in enumerate(columns)
    ]
    needed = sum(widths) + 3 * len(columns) + 1  # one space of padding each side, a border between and around
    if needed <= console.width:
        return _table(columns, rows, title, caption)
    return _blocks(columns, rows, title, caption)


def _table(columns: Sequence[Column], rows: Sequence[Sequence[str]], title: str | None, caption: str | None) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    for col in columns:
        if col.prose:
            table.add_column(col.header, justify=col.justify, overflow="fold", min_width=PROSE_MIN_WIDTH)
        else:
            table.add_column(col.header, justify=col.justify, no_wrap=True)
    for row in rows:
        table.add_row(*(Text(str(cell)) for cell in row))
    return table


def _blocks(columns: Sequence[Column], rows: Sequence[Sequence[str]], title: str | None, caption: str | None) -> Any:
    from rich.console import Group
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    parts: list[Any] = [Text(title, style="italic")] if title else []
    for row in rows:
        fields = Table.grid(padding=(0, 2))
        fields.add_column(style="dim", no_wrap=True)
        fields.add_column(overflow="fold")
        for col, cell in zip(columns[1:], row[1:], strict=True):
            if str(cell):
                fields.add_row(Text(col.header), Text(str(cell)))
        parts += [Text(str(row[0]), style="bold", overflow="fold"), Padding(fields, (0, 0, 0, 2), expand=False)]
    if caption:
        parts.append(Text(caption, style="dim"))
    return Group(*parts)
