"""What counts as a web address in a name or an address line (``forms.py`` refuses it there: the
name is the From line of an email to an MP, and a mail client turns a web address into a link).

Text is NFKC-normalised first (``normalise_line``), so full-width letters and dots
(``ｅｖｉｌ．ｃｏｍ``) read as what they look like, and the ideographic full stop that browsers take
as a dot (``evil。com``) is read as one. Then a web address is any of:

- a scheme or ``www.`` (``URL_RE``);
- a hostname in lower case, or ending in a common top-level domain in any case (``HOSTNAME_RE``);
- words joined by dots, in any case, whose last word is a real top-level domain (``EVIL.SUPPORT``,
  ``Paypal.Com``; ``tlds.py``);
- an IP address: four numbers joined by dots (``1.2.3.4``, also in hex) or an IPv6 address.

Initials and abbreviations with a space after the dot pass (``J. R. R. Tolkien``, ``St. John``),
as do words joined by a dot that are not a domain (``St.Albans``) and numbers in addresses
(``Flat 2.1``, ``1.5 Mill Lane``, ``Unit 1.2.3``).
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata

from services.intake.tlds import TOP_LEVEL_DOMAINS

URL_RE = re.compile(r"(https?://|www\.|\b[a-z0-9-]+\.(com|net|org|uk|io|ru|info|xyz)\b)", re.I)
# Any other hostname: labels joined by dots, ending in a common top-level domain (any case), or
# written in lower case throughout ("evil.example", "bit.ly").
COMMON_TLDS = (
    "com|net|org|uk|io|ru|info|xyz|biz|co|me|app|dev|online|site|top|shop|ly|gl|to|tk|ml|ga|cf|"
    "gq|cn|de|fr|eu|us|ca|au|in|link|click|live|club|vip|ws|cc|tv|su|pw|icu|gov|edu|mp"
)
HOSTNAME_RE = re.compile(
    rf"(?<![\w.])(?:[a-z0-9-]+\.)+(?:(?i:{COMMON_TLDS})|[a-z]{{2,}})(?![\w.])|"
    rf"(?<![\w.])(?i:[a-z0-9-]+\.)+(?i:{COMMON_TLDS})(?![\w.])"
)
# Words (any script) joined by dots, with no space around the dots.
DOTTED_RE = re.compile(r"[\w-]+(?:\.[\w-]+)+")
IPV4_PART_RE = re.compile(r"^(?:0x[0-9a-f]+|\d+)$", re.I)
# Dots a browser reads as the dot between a domain's labels (UTS 46) that NFKC leaves as they are.
LOOK_ALIKE_DOTS = str.maketrans({"\u3002": "."})


def normalise_line(value: str) -> str:
    """A single line as we check and keep it: NFKC (compatibility forms made plain: full-width
    letters, ligatures, styled letters), so what is checked is what is sent."""
    return unicodedata.normalize("NFKC", value)


def _ip_address(token: str) -> bool:
    token = token.strip("[]()<>,;\"'")
    if token.count(":") >= 2:  # IPv6, maybe in brackets with a port: [::1]:80
        try:
            ipaddress.IPv6Address(token.partition("%")[0])
            return True
        except ValueError:
            return False
    return False


def _dotted_web_address(run: str) -> bool:
    labels = run.split(".")
    if len(labels) == 4 and all(IPV4_PART_RE.match(part) for part in labels):
        return True  # 1.2.3.4, 0x7f.0.0.1: browsers take them as addresses
    return labels[-1].casefold() in TOP_LEVEL_DOMAINS and any(labels[:-1])


def is_web_address(value: str) -> bool:
    """Whether ``value`` (a name or an address line, already ``normalise_line``-d) contains
    something a mail client or a browser would take for a web address."""
    text = value.translate(LOOK_ALIKE_DOTS)
    if URL_RE.search(text) or HOSTNAME_RE.search(text):
        return True
    if any(_dotted_web_address(run) for run in DOTTED_RE.findall(text)):
        return True
    return any(_ip_address(token) for token in text.split())
