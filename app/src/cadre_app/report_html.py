"""`cadre cost --html`: one self-contained HTML page (inline CSS and SVG, no script, nothing fetched).

Two charts drawn here as inline SVG: spend per UTC day stacked by role, and off-the-rails % per model,
then the per-model table. Every string from the ledger is escaped.
"""

from __future__ import annotations

import math
from html import escape

from cadre_app import usage

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
CSS = """
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 980px;
       color: #222; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .25rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
.meta, .note { color: #666; } .note { font-style: italic; }
svg { display: block; max-width: 100%; height: auto; } svg text { font: 11px system-ui, sans-serif; fill: #444; }
.axis { stroke: #999; } .grid { stroke: #e5e5e5; }
.legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .25rem 1rem; }
.swatch { display: inline-block; width: .8em; height: .8em; margin-right: .35em; vertical-align: -.05em; }
table { border-collapse: collapse; margin-top: .5rem; } th, td { padding: .3rem .6rem; border-bottom: 1px solid #ddd; }
th { text-align: left; background: #f6f6f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
"""


def render(data: usage.LedgerSlice, *, period: str, generated: str) -> str:
    """The whole page for the rows in `data`; `period` and `generated` are shown as given."""
    models = usage.stats(data.rows, "model")
    days, spend = usage.daily_spend(data.rows, "role")
    total = sum(s.cost_usd for s in models)
    calls = sum(s.calls for s in models)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Cadre cost report ({escape(period)})</title><style>{CSS}</style></head>",
        "<body>",
        "<h1>Cadre cost report</h1>",
        f'<p class="meta">{escape(period)} &middot; {calls} calls &middot; {total:.4f} USD &middot; '
        f"generated {escape(generated)}</p>",
    ]
    if data.truncated:
        parts.append(f'<p class="note">Only the latest {usage.ROW_LIMIT:,} attempts are included; pass --days.</p>')
    if not data.rows:
        parts.append('<p class="note">No model calls recorded in this period.</p>')
    parts += ["<h2>Spend over time per role (USD per UTC day)</h2>", spend_chart(days, spend)]
    parts += ["<h2>Off-the-rails spend per model (% of the model's spend)</h2>", off_rails_chart(models)]
    parts += ["<h2>Per model</h2>", table(models), "</body>", "</html>", ""]
    return "\n".join(parts)


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k at or above `value` (1.0 for nothing)."""
    if value <= 0:
        return 1.0
    step = 10 ** math.floor(math.log10(value))
    return float(next(m * step for m in (1, 2, 2.5, 5, 10) if m * step >= value * (1 - 1e-12)))


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def legend(names: list[str]) -> str:
    items = "".join(
        f'<li><span class="swatch" style="background:{_color(i)}"></span>{escape(name)}</li>'
        for i, name in enumerate(names)
    )
    return f'<ul class="legend">{items}</ul>'


def spend_chart(days: list[str], series: dict[str, list[float]]) -> str:
    """Stacked bars, one per day, one `<g class="series" data-series=ROLE>` per role."""
    if not days:
        return '<p class="note">No spend to chart.</p>'
    width, height, left, right, top, bottom = 760, 280, 64, 12, 12, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = nice_ceiling(max(sum(values[i] for values in series.values()) for i in range(len(days))))
    slot = plot_w / len(days)
    bar = min(max(slot * 0.72, 1.0), 56.0)
    out = [f'<svg id="spend-by-role" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
           f"<title>Spend per UTC day by role, 0 to {top_value:g} USD</title>"]  # fmt: skip
    for k in range(5):
        value = top_value * k / 4
        y = top + plot_h - plot_h * k / 4
        out.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{_num(y)}" y2="{_num(y)}"/>')
        out.append(f'<text x="{left - 6}" y="{_num(y + 4)}" text-anchor="end">${value:.4g}</text>')
    every = max(1, math.ceil(len(days) / 10))
    for i, day in enumerate(days):
        if i % every == 0:
            x = left + slot * i + slot / 2
            out.append(f'<text x="{_num(x)}" y="{height - bottom + 16}" text-anchor="middle">{escape(day[5:])}</text>')
    base = [0.0] * len(days)
    for n, (name, values) in enumerate(series.items()):
        out.append(f'<g class="series" data-series="{escape(name)}" fill="{_color(n)}">')
        for i, value in enumerate(values):
            if value <= 0:
                continue
            h = plot_h * value / top_value
            y = top + plot_h - plot_h * base[i] / top_value - h
            x = left + slot * i + (slot - bar) / 2
            out.append(
                f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(bar)}" height="{_num(h)}" '
                f'data-day="{escape(days[i])}" data-value="{value:.6f}">'
                f"<title>{escape(days[i])} {escape(name)}: {value:.4f} USD</title></rect>"
            )
            base[i] += value
        out.append("</g>")
    out.append(f'<line class="axis" x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}"/>')
    out.append("</svg>")
    return "\n".join(out) + legend(list(series))


def off_rails_chart(models: list[usage.UsageStats]) -> str:
    """Horizontal bars, one `<g class="bar" data-series=MODEL data-value=PCT>` per model ("n/a" without spend)."""
    if not models:
        return '<p class="note">No models to chart.</p>'
    row, left, right, top, bottom, width = 26, 230, 60, 8, 28, 760
    plot_w = width - left - right
    height = top + row * len(models) + bottom
    top_value = min(nice_ceiling(max((s.off_rails_pct or 0.0) for s in models)), 100.0)
    out = [f'<svg id="off-rails-by-model" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
           f"<title>Off-the-rails spend per model, 0 to {top_value:g}%</title>"]  # fmt: skip
    for k in range(5):
        x = left + plot_w * k / 4
        out.append(f'<line class="grid" x1="{_num(x)}" x2="{_num(x)}" y1="{top}" y2="{height - bottom}"/>')
        out.append(
            f'<text x="{_num(x)}" y="{height - bottom + 16}" text-anchor="middle">{top_value * k / 4:.3g}%</text>'
        )
    for i, s in enumerate(models):
        y = top + row * i
        label = s.key if len(s.key) <= 34 else s.key[:33] + "\u2026"
        value = "n/a" if s.off_rails_pct is None else f"{s.off_rails_pct:.4f}"
        shown = "no spend" if s.off_rails_pct is None else f"{s.off_rails_pct:.1f}%"
        w = 0.0 if s.off_rails_pct is None else plot_w * min(s.off_rails_pct, 100.0) / top_value
        out.append(f'<g class="bar" data-series="{escape(s.key)}" data-value="{value}">')
        out.append(f"<title>{escape(s.key)}: {escape(shown)} of {s.cost_usd:.4f} USD</title>")
        out.append(f'<text x="{left - 8}" y="{y + row / 2 + 4:g}" text-anchor="end">{escape(label)}</text>')
        out.append(f'<rect x="{left}" y="{y + 4}" width="{_num(w)}" height="{row - 8}" fill="{_color(2)}"/>')
        out.append(f'<text x="{_num(left + w + 6)}" y="{y + row / 2 + 4:g}">{escape(shown)}</text>')
        out.append("</g>")
    out.append(f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{height - bottom}"/>')
    out.append("</svg>")
    return "\n".join(out)


def table(models: list[usage.UsageStats]) -> str:
    if not models:
        return '<p class="note">No model calls.</p>'
    head = "".join(f"<th>{escape(c)}</th>" for c in ("model", *usage.COLUMNS))
    body = "".join(
        f"<tr><td>{escape(s.key)}</td>" + "".join(f'<td class="num">{escape(c)}</td>' for c in s.cells()) + "</tr>"
        for s in models
    )
    note = f'<p class="note">{escape(usage.CAPTION)}.</p>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"
