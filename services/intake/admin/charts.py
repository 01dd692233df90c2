"""Charts for the staff pages, drawn on the server as inline SVG: no JavaScript, no images.

Each chart is one ``<svg role="img">`` named by its ``<title>`` and described by its ``<desc>``
(which states the figures that matter), so a screen reader announces it as one picture; the page
puts the same numbers in a table beside it. Every bar also has a ``<title>`` (a tooltip on hover).
Colours follow the GOV.UK palette and are never the only way to tell series apart: the legend and
the table name them.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from markupsafe import Markup

FONT = 'font-family="Arial, Helvetica, sans-serif"'
INK, GRID, MUTED = "#0b0c0c", "#b1b4b6", "#505a5f"


@dataclass(frozen=True)
class Series:
    name: str
    colour: str
    values: list[int]


def nice_ticks(top: int, most: int = 5) -> list[int]:
    """0 and round steps (1, 2, 5 × 10^k) up to at least ``top``, no more than ``most`` steps."""
    step, factors = 1, (2.0, 2.5, 2.0)  # 1, 2, 5, 10, 20, 50, 100 …
    while top / step > most:
        step = int(step * factors[0])
        factors = (*factors[1:], factors[0])
    last = max(step, -(-top // step) * step)
    return list(range(0, last + 1, step))


def _svg_open(chart_id: str, title: str, desc: str, width: int, height: int) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="dearmp-chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" {FONT} font-size="14">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
    ]


def column_chart(
    *,
    chart_id: str,
    title: str,
    desc: str,
    slots: list[str],
    axis_labels: list[str],
    series: list[Series],
    width: int = 900,
    height: int = 330,
) -> Markup:
    """Grouped columns: one slot per entry of ``slots`` (its full name, used in tooltips), one
    column per series in each slot; ``axis_labels`` (same length, "" for none) under the axis."""
    left, right, top, bottom = 52, 26, 44, 58
    plot_w, plot_h = width - left - right, height - top - bottom
    ticks = nice_ticks(max([1, *(v for s in series for v in s.values)]))
    scale = plot_h / ticks[-1]
    base = top + plot_h
    out = _svg_open(chart_id, title, desc, width, height)
    x = left
    for s in series:  # legend, top left
        out.append(f'<rect x="{x}" y="10" width="16" height="16" fill="{s.colour}"/>')
        out.append(f'<text x="{x + 22}" y="23" fill="{INK}">{escape(s.name)}</text>')
        x += 34 + 8 * len(s.name)
    for tick in ticks:
        y = base - tick * scale
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" '
            f'stroke="{GRID if tick else INK}" stroke-width="1"/>'
        )
        out.append(
            f'<text x="{left - 8}" y="{y + 5:.1f}" text-anchor="end" fill="{INK}">{tick:,}</text>'
        )
    slot_w = plot_w / max(1, len(slots))
    bar_w = slot_w * 0.8 / max(1, len(series))
    for i, (slot, label) in enumerate(zip(slots, axis_labels, strict=True)):
        x0 = left + i * slot_w + slot_w * 0.1
        for j, s in enumerate(series):
            value = s.values[i]
            h = value * scale
            tip = escape(f"{slot}: {value:,} {s.name.lower()}")
            out.append(
                f'<rect x="{x0 + j * bar_w:.1f}" y="{base - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{s.colour}"><title>{tip}</title></rect>'
            )
        if label:
            cx = left + i * slot_w + slot_w / 2
            out.append(
                f'<line x1="{cx:.1f}" y1="{base}" x2="{cx:.1f}" y2="{base + 5}" stroke="{INK}"/>'
            )
            for k, part in enumerate(label.split("\n")):
                out.append(
                    f'<text x="{cx:.1f}" y="{base + 20 + 16 * k}" text-anchor="middle" '
                    f'fill="{INK if k == 0 else MUTED}">{escape(part)}</text>'
                )
    out.append("</svg>")
    return Markup("\n".join(out))


def bar_chart(
    *,
    chart_id: str,
    title: str,
    desc: str,
    bars: list[tuple[str, int, str]],
    width: int = 900,
) -> Markup:
    """Horizontal bars: (label, value, colour), one row each, the value written after the bar."""
    label_w, row_h, pad = 110, 40, 12
    height = pad * 2 + row_h * max(1, len(bars))
    plot_w = width - label_w - 90
    top = max([1, *(v for _label, v, _c in bars)])
    out = _svg_open(chart_id, title, desc, width, height)
    for i, (label, value, colour) in enumerate(bars):
        y = pad + i * row_h
        w = plot_w * value / top
        out.append(
            f'<text x="{label_w - 10}" y="{y + 25}" text-anchor="end" fill="{INK}">'
            f"{escape(label)}</text>"
        )
        out.append(
            f'<rect x="{label_w}" y="{y + 6}" width="{max(w, 1):.1f}" height="{row_h - 12}" '
            f'fill="{colour}"><title>{escape(f"{label}: {value:,}")}</title></rect>'
        )
        out.append(
            f'<text x="{label_w + max(w, 1) + 8:.1f}" y="{y + 25}" fill="{INK}" '
            f'font-weight="bold">{value:,}</text>'
        )
    out.append(
        f'<line x1="{label_w}" y1="{pad}" x2="{label_w}" y2="{height - pad}" stroke="{INK}"/>'
    )
    out.append("</svg>")
    return Markup("\n".join(out))
