"""Mark text for translation without translating it.

Messages such as form errors are stored and passed around in English and translated when a page
is rendered (``{{ _(message) }}`` in the templates). ``N_`` tells ``pybabel extract`` to put the
string in the catalogue and returns it unchanged. Only literals can be extracted: never pass an
f-string or a variable to ``N_``.
"""

from __future__ import annotations


def N_(message: str) -> str:  # noqa: N802 - the usual gettext name
    return message
