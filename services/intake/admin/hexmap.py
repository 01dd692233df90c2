"""A hex map of the 650 Westminster constituencies, drawn on the server as inline SVG.

The layout is Open Innovations' HexJSON (``data/uk-constituencies-2024.hexjson``, MIT licence,
``data/LICENSE-hexmaps.txt``), keyed by ONS code. In HexJSON, ``q`` is the column (growing east)
and ``r`` the row (growing north, so it is drawn upwards). The layout names which hexes are
shoved by half a hex:

- ``odd-r`` / ``even-r``: pointy-topped hexes; odd (even) rows are shoved right;
- ``odd-q`` / ``even-q``: flat-topped hexes; odd (even) columns are shoved up.

Parity is the coordinate's own (``r & 1``), so negative rows work as positive ones do.

The geometry (each hex's path and the escaped name) is computed once per process
(``geometry``); drawing a map is then one string join over 650 pre-built pieces plus a colour
and a count each. Each hex has a ``<title>`` (name and count: a tooltip, and what a screen reader
reads when it walks the picture); the ``<svg>`` is named and described as the charts are
(``charts.py``), and the page puts the same numbers in a table.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from html import escape
from pathlib import Path

from markupsafe import Markup

from services.intake.admin.charts import FONT, INK, MUTED

DATA = Path(__file__).parent / "data" / "uk-constituencies-2024.hexjson"
LAYOUTS = ("odd-r", "even-r", "odd-q", "even-q")
SIZE = 10.0  # a hex's radius (centre to corner), in SVG units
MARGIN = 8.0
LEGEND_H = 64.0
NONE_COLOUR = "#f3f2f1"  # GOV.UK light grey: no signatures
# Light to dark GOV.UK blues: more signatures, darker hex.
SHADES = ("#d2e2f1", "#8eb8dc", "#5694ca", "#1d70b8", "#003078")


@dataclass(frozen=True)
class Hex:
    code: str
    name: str
    x: float  # centre
    y: float


@dataclass(frozen=True)
class Geometry:
    layout: str
    width: float
    height: float  # of the hexes, without the legend
    hexes: tuple[Hex, ...]
    # Per hex, the SVG before its colour, and between its colour and its count.
    heads: tuple[str, ...]
    names: tuple[str, ...]

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(h.code for h in self.hexes)


def centres(
    layout: str, cells: dict[str, tuple[int, int]], size: float
) -> dict[str, tuple[float, float]]:
    """Each cell's centre, (0, 0) for the top-left hex's bounding box corner, y downwards."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown HexJSON layout {layout!r}")
    qs = [q for q, _r in cells.values()]
    rs = [r for _q, r in cells.values()]
    q0, r_top = min(qs), max(rs)
    wide = math.sqrt(3) * size  # across the flats
    shove = 1 if layout.startswith("odd") else 0
    out = {}
    for code, (q, r) in cells.items():
        if layout.endswith("-r"):  # pointy-topped, rows
            x = (q - q0) * wide + wide / 2 + (wide / 2 if (r & 1) == shove else 0)
            y = (r_top - r) * 1.5 * size + size
        else:  # flat-topped, columns
            x = (q - q0) * 1.5 * size + size
            y = (r_top - r) * wide + wide / 2 + (wide / 2 if (q & 1) != shove else 0)
        out[code] = (x, y)
    return out


def outline(layout: str, size: float) -> str:
    """The hex's outline as relative path steps from its first corner (``M`` puts it there)."""
    h = math.sqrt(3) * size / 2
    if layout.endswith("-r"):  # from the top corner, clockwise
        steps = [(h, size / 2), (0, size), (-h, size / 2), (-h, -size / 2), (0, -size)]
    else:  # from the left corner, clockwise
        steps = [(size / 2, -h), (size, 0), (size / 2, h), (-size / 2, h), (-size, 0)]
    return "".join(f"l{dx:.2f},{dy:.2f}" for dx, dy in steps) + "z"


def first_corner(layout: str, x: float, y: float, size: float) -> tuple[float, float]:
    return (x, y - size) if layout.endswith("-r") else (x - size, y)


@cache
def geometry(path: Path = DATA, size: float = SIZE) -> Geometry:
    """The map's hexes, read and laid out once per process."""
    data = json.loads(path.read_text(encoding="utf-8"))
    layout = data["layout"]
    cells = {code: (int(h["q"]), int(h["r"])) for code, h in data["hexes"].items()}
    at = centres(layout, cells, size)
    step = outline(layout, size)
    hexes, heads, names = [], [], []
    for code in sorted(cells, key=lambda c: (at[c][1], at[c][0])):  # top to bottom, west to east
        x, y = at[code]
        x, y = x + MARGIN, y + MARGIN
        name = str(data["hexes"][code].get("n") or code)
        hexes.append(Hex(code, name, x, y))
        cx, cy = first_corner(layout, x, y, size)
        heads.append(f'<path data-code="{escape(code)}" d="M{cx:.2f},{cy:.2f}{step}" fill="')
        names.append(f'"><title>{escape(name)}: ')
    wide = math.sqrt(3) * size
    if layout.endswith("-r"):
        width = max(h.x for h in hexes) + wide / 2 + MARGIN
        height = max(h.y for h in hexes) + size + MARGIN
    else:
        width = max(h.x for h in hexes) + size + MARGIN
        height = max(h.y for h in hexes) + wide / 2 + MARGIN
    return Geometry(layout, width, height, tuple(hexes), tuple(heads), tuple(names))


def classes(top: int) -> list[tuple[int, int]]:
    """(from, to) ranges of counts for the shades, for counts up to ``top``: one per count when
    there are few, else growing ranges (a square-root scale) so a few busy seats do not leave
    every other hex the palest shade."""
    if top <= 0:
        return []
    if top <= len(SHADES):
        return [(n, n) for n in range(1, top + 1)]
    uppers: list[int] = []
    for k in range(1, len(SHADES) + 1):
        upper = max(1, math.ceil(top * (k / len(SHADES)) ** 2))
        if not uppers or upper > uppers[-1]:
            uppers.append(upper)
    ranges, low = [], 1
    for upper in uppers:
        ranges.append((low, upper))
        low = upper + 1
    return ranges


def shade(count: int, ranges: list[tuple[int, int]]) -> str:
    if count <= 0:
        return NONE_COLOUR
    if len(ranges) == 1:
        # Every seat on the map has the top count (a new campaign's first signatures): the
        # darkest shade, as the busiest seat always has; the palest is hard to tell from grey.
        return SHADES[-1]
    for i, (_low, high) in enumerate(ranges):
        if count <= high:
            return SHADES[
                i if len(ranges) == len(SHADES) else round(i * 4 / max(1, len(ranges) - 1))
            ]
    return SHADES[-1]


def _legend(ranges: list[tuple[int, int]], y: float, noun: str) -> list[str]:
    items = [("0", NONE_COLOUR)] + [
        (f"{lo:,}" if lo == hi else f"{lo:,}–{hi:,}", shade(hi, ranges)) for lo, hi in ranges
    ]
    out = [
        f'<text x="{MARGIN}" y="{y + 14:.1f}" fill="{INK}">{escape(noun.capitalize())} per constituency</text>'
    ]
    x = MARGIN
    for label, colour in items:
        out.append(
            f'<rect x="{x:.1f}" y="{y + 24:.1f}" width="18" height="18" fill="{colour}" '
            f'stroke="{MUTED}" stroke-width="0.5"/>'
        )
        out.append(f'<text x="{x + 23:.1f}" y="{y + 38:.1f}" fill="{INK}">{escape(label)}</text>')
        x += 36 + 8 * len(label)
    return out


def hex_map(
    counts: dict[str, int],
    *,
    chart_id: str = "constituency-map",
    title: str = "Confirmed signatures by constituency",
    noun: str = "signatures",
    geo: Geometry | None = None,
) -> Markup:
    """The map with each constituency shaded by ``counts[code]`` (missing: 0), a legend, and a
    description that states the figures that matter. Codes not on the map are left out of it."""
    geo = geo or geometry()
    values = [counts.get(h.code, 0) for h in geo.hexes]
    top = max(values, default=0)
    ranges = classes(top)
    placed = sum(values)
    reached = sum(1 for v in values if v)
    busiest = max(geo.hexes, key=lambda h: counts.get(h.code, 0)) if top else None
    desc = (
        f"A hex map of the {len(geo.hexes)} UK constituencies, one hexagon each, darker for more "
        f"{noun}: {placed:,} {noun} in {reached:,} constituencies."
        + (f" The most are in {busiest.name}, with {top:,}." if busiest else "")
    )
    width, height = geo.width, geo.height + LEGEND_H
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="dearmp-chart dearmp-map" role="img" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" width="100%" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" {FONT} font-size="13">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>',
        f'<rect width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>',
        '<g stroke="#ffffff" stroke-width="0.8">',
    ]
    one, many = noun.rstrip("s"), noun
    parts = [
        f"{head}{shade(v, ranges)}{name}{v:,} {one if v == 1 else many}</title></path>"
        for head, name, v in zip(geo.heads, geo.names, values, strict=True)
    ]
    out.append("".join(parts))
    out.append("</g>")
    out += _legend(ranges, geo.height, noun)
    out.append("</svg>")
    return Markup("\n".join(out))
