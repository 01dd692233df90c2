"""The organisation's name on the emails we send its supporters: "ECPAT UK via Dear MP" (its
``sender_name``, ``dearmp orgs add``), not "Dear MP", on the confirmation, the reminder, the copy
of the letter and every notice. Letters to a target keep "<supporter> via Dear MP": they are the
supporter's. The address stays ours (hello@DEARMP_MAIL_DOMAIN): the name is only a name."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy.engine import Engine

from services.mailer.delivery import Outgoing
from shared.mail import with_from_name
from shared.organisations import sender_name_for
from shared.ttl_cache import TtlCache


class Senders:
    """Each campaign's sender name, read at most every ``ttl`` seconds (a renamed organisation
    shows that late). Safe to share between threads."""

    def __init__(self, engine: Engine, ttl: float = 5.0) -> None:
        self.engine = engine
        self._found: TtlCache[str, str | None] = TtlCache(ttl)

    def name(self, campaign: str) -> str | None:
        return self._found.get(campaign, lambda: self._read(campaign))

    def _read(self, campaign: str) -> str | None:
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            return sender_name_for(conn, campaign)


def branded(out: Outgoing, name: str | None, our_address: str) -> Outgoing:
    """``out`` with ``name`` on its From, if it is from us (``our_address``); else as it is."""
    if not name:
        return out
    addresses: tuple[Any, ...] = getattr(out.message["From"], "addresses", ())
    if len(addresses) != 1 or addresses[0].addr_spec != our_address:
        return out  # a letter: from the supporter, via us
    return replace(out, message=with_from_name(out.message, name))



