"""UK postcodes: normalise, validate, and recognise the ones with no Westminster MP."""

from __future__ import annotations

import re

_INWARD = r"[0-9][ABD-HJLNP-UW-Z]{2}"  # inward letters never C, I, K, M, O, V
_OUTWARD = r"(?:[A-Z][0-9]{1,2}|[A-Z][A-HJ-Y][0-9]{1,2}|[A-Z][0-9][A-Z]|[A-Z][A-HJ-Y][0-9][A-Z])"
POSTCODE_RE = re.compile(rf"^(?:{_OUTWARD} {_INWARD}|GIR 0AA)$")
BFPO_RE = re.compile(r"^BFPO ?(\d{1,4})$")
# British Forces Post Office addresses also have postcodes of their own, in the BF1 district
# ("BF1 3AA"): forces addresses, like BFPO numbers, with no constituency.
BFPO_AREA = "BF"
CROWN_DEPENDENCIES = {"JE": "Jersey", "GY": "Guernsey", "IM": "The Isle of Man"}


def normalise(raw: str) -> str:
    """Strip whitespace and dashes, uppercase, then ``outward + " " + inward``."""
    compact = re.sub(r"[\s\-]+", "", raw or "").upper()
    bfpo = BFPO_RE.match(compact)
    if bfpo:
        return f"BFPO {bfpo.group(1)}"
    if len(compact) < 5:
        return compact
    return f"{compact[:-3]} {compact[-3:]}"


def is_valid(postcode: str) -> bool:
    """True for a well-formed (normalised) UK postcode, including BFPO numbers."""
    return bool(POSTCODE_RE.match(postcode) or BFPO_RE.match(postcode))


def without_mp(postcode: str) -> str | None:
    """Where a valid (normalised) postcode with no Westminster MP is: "BFPO" (a BFPO number or
    a BF1 postcode) or the Crown dependency's area ("JE", "GY", "IM"); None for any other."""
    area = re.match(r"^[A-Z]+", postcode)
    if BFPO_RE.match(postcode) or (area and area.group(0) == BFPO_AREA):
        return "BFPO"
    if area and area.group(0) in CROWN_DEPENDENCIES:
        return area.group(0)
    return None


def no_westminster_mp(postcode: str) -> str | None:
    """Why a valid postcode has no Westminster MP (BFPO, Crown dependencies), else None."""
    place = without_mp(postcode)
    if place == "BFPO":
        return "British Forces Post Office addresses have no constituency"
    if place is not None:
        return f"{CROWN_DEPENDENCIES[place]} has no MP at Westminster"
    return None
