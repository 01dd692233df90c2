"""Where a signature came from: ``?source=`` and ``utm_source``, ``utm_medium``, ``utm_campaign``
on the link to the campaign page, carried through the form as hidden fields (or sent as optional
fields of the JSON API) and stored with the signature, for the campaign dashboard's "Sources".

A tag is what the campaigner put on a link they shared with many people, so it must stay a short
tag: letters, digits, spaces and ``. _ - + : /`` only, at most ``MAX`` characters. Anything else
(an address, markup, a long string) is not stored: on the form it is dropped without a word (it
must never stop someone signing); the API refuses it with 422, as it does any invalid field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

FIELDS = ("source", "utm_source", "utm_medium", "utm_campaign")
MAX = 60
PATTERN = r"^[A-Za-z0-9 ._+:/-]{1,60}$"
_VALID = re.compile(PATTERN)


def clean(value: Any) -> str | None:
    """The tag, trimmed, or None if there is none or it is not a plain short tag."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if _VALID.match(value) else None


def sources_of(data: Mapping[str, Any]) -> dict[str, str | None]:
    """Every source field, from a query string, a posted form or an API body."""
    return {name: clean(data.get(name)) for name in FIELDS}
