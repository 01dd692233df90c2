"""The constituency hex map (services/intake/admin/hexmap.py): the HexJSON layouts as the format
defines them, every one of the 650 constituencies once with its name and count, the legend, and
the speed (geometry cached, a map drawn in milliseconds)."""

from __future__ import annotations

import itertools
import math
import re
import time
from pathlib import Path

import pytest

from services.intake.admin import hexmap

WIDE = math.sqrt(3) * hexmap.SIZE  # centre to centre of two neighbours


def grid(cols: int = 6, rows: int = 6) -> dict[str, tuple[int, int]]:
    return {f"{q}:{r}": (q, r) for q in range(-2, cols - 2) for r in range(-3, rows - 3)}


@pytest.mark.parametrize("layout", hexmap.LAYOUTS)
def test_every_layout_tiles_the_plane(layout: str) -> None:
    """Neighbours touch, nothing overlaps, and an inner hex has exactly six neighbours."""
    at = hexmap.centres(layout, grid(), hexmap.SIZE)
    for a, b in itertools.combinations(at.values(), 2):
        assert math.dist(a, b) >= WIDE - 1e-6
    inner = [c for c, (q, r) in grid().items() if -1 <= q <= 2 and -2 <= r <= 1]
    for code in inner:
        near = [o for o in at if o != code and math.dist(at[o], at[code]) < WIDE + 1e-6]
        assert len(near) == 6, (layout, code, near)


def test_which_hexes_are_shoved() -> None:
    """Rows grow northwards (drawn upwards). odd-r/even-r: odd/even rows shoved right; odd-q/
    even-q: odd/even columns shoved up; negative coordinates by their own parity."""
    cells = {"a": (0, 0), "b": (0, 1), "c": (0, -1), "d": (1, 0)}
    odd_r = hexmap.centres("odd-r", cells, 10)
    assert odd_r["b"][0] > odd_r["a"][0] and odd_r["c"][0] > odd_r["a"][0]
    assert odd_r["b"][1] < odd_r["a"][1] < odd_r["c"][1]  # north is up
    even_r = hexmap.centres("even-r", cells, 10)
    assert even_r["b"][0] < even_r["a"][0]
    odd_q = hexmap.centres("odd-q", cells, 10)
    assert odd_q["d"][1] < odd_q["a"][1] and odd_q["d"][0] > odd_q["a"][0]
    even_q = hexmap.centres("even-q", cells, 10)
    assert even_q["d"][1] > even_q["a"][1]
    with pytest.raises(ValueError):
        hexmap.centres("odd-z", cells, 10)


def test_the_uk_map_has_650_constituencies_each_with_its_name_and_count() -> None:
    geo = hexmap.geometry()
    assert geo.layout == "odd-r" and len(geo.hexes) == 650
    codes = [h.code for h in geo.hexes]
    assert len(set(codes)) == 650
    prefixes = {p: sum(c.startswith(p) for c in codes) for p in ("E14", "W07", "S14", "N05")}
    assert prefixes == {"E14": 543, "W07": 32, "S14": 57, "N05": 18}
    svg = str(hexmap.hex_map({"E14001063": 12, "E14001465": 1, "Z99999999": 5}))
    assert svg.count("<path ") == 650 and svg.count("<title>") == 650  # the map's own has an id
    assert "<title>Aldershot: 12 signatures</title>" in svg
    assert "<title>Sevenoaks: 1 signature</title>" in svg
    assert "13 signatures in 2 constituencies" in svg  # the code not on the map is left out
    assert "The most are in Aldershot, with 12." in svg
    legend = re.findall(r"<text [^>]*>([^<]*)</text>", svg)
    assert legend[0] == "Signatures per constituency"
    assert legend[1:] == ["0", "1", "2", "3–5", "6–8", "9–12"]
    assert "Ynys Môn" in svg or "Ynys M&#" in svg  # names are escaped, not dropped


def test_shades_grow_with_the_count_and_the_legend_covers_every_count() -> None:
    assert hexmap.classes(0) == []
    assert hexmap.classes(3) == [(1, 1), (2, 2), (3, 3)]
    # The first signatures: the busiest seat is the darkest, never the palest shade (near grey).
    assert hexmap.shade(1, hexmap.classes(1)) == hexmap.SHADES[-1]
    assert [hexmap.shade(n, hexmap.classes(2)) for n in (1, 2)] == [
        hexmap.SHADES[0],
        hexmap.SHADES[-1],
    ]
    ranges = hexmap.classes(1000)
    assert ranges[0][0] == 1 and ranges[-1][1] == 1000 and len(ranges) == len(hexmap.SHADES)
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(ranges))
    shades = [hexmap.shade(n, ranges) for n in (0, 1, 100, 200, 500, 1000)]
    assert shades[0] == hexmap.NONE_COLOUR and shades[-1] == hexmap.SHADES[-1]
    assert len(set(shades)) == 6


def test_geometry_is_read_once_and_a_map_is_drawn_in_milliseconds() -> None:
    geo = hexmap.geometry()
    assert hexmap.geometry() is geo  # cached per process
    counts = {h.code: i % 97 for i, h in enumerate(geo.hexes)}
    started = time.perf_counter()
    for _ in range(20):
        hexmap.hex_map(counts)
    assert (time.perf_counter() - started) / 20 < 0.02  # about 1 ms here


def test_the_licence_travels_with_the_data() -> None:
    licence = Path(hexmap.DATA).parent / "LICENSE-hexmaps.txt"
    text = licence.read_text(encoding="utf-8")
    assert "MIT License" in text and "Open Innovations" in text
