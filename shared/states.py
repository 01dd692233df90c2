"""The states a signature and a letter go through: the one vocabulary every writer and reader
uses, and that CHECK constraints enforce (migration 0009).

A signature (intake's ``signatures.status``)::

    pending ──confirm──▶ confirmed ──▶ resolved ──▶ sent | failed
       │                     ├──────▶ unresolvable ──signed again──▶ pending
       │                     └──────▶ held (seat vacant) ──▶ resolved
       └──erased before it was confirmed──▶ erased

A confirmed signature that is erased keeps its status (it still counts; its personal fields are
gone). A letter (the mailer's ``letters.state``, one row per signature and purpose)::

    created ──▶ sending ──▶ sent | failed      (a temporary failure gives the claim back)
       held ──▶ sending                         (the recipient's address bounced: it waits)
                            sent ──▶ bounced    (a bounce came back for it, services/mailer/bounces)
     queued ──▶ sending | sent                   (a digest's row, or a letter over the daily cap:
                                                  services/mailer/scheduled.py)
"""

from __future__ import annotations

from enum import StrEnum


class SignatureStatus(StrEnum):
    PENDING = "pending"  # signed, waiting for the supporter to confirm
    CONFIRMED = "confirmed"  # confirmed; the target is being found
    RESOLVED = "resolved"  # target found; the letter is on its way
    UNRESOLVABLE = "unresolvable"  # no target for this postcode (the reason is kept)
    HELD = "held"  # the seat is vacant: the letter waits for the new member
    SENT = "sent"  # the letter reached the target's mail server
    FAILED = "failed"  # the target's mail server refused the letter for good
    ERASED = "erased"  # erased before it was confirmed: never counted

    @classmethod
    def replaceable(cls) -> frozenset[SignatureStatus]:
        """Signing again with the same address replaces a signature in these statuses (a fresh
        confirmation; the old link stops working): nothing has gone to the target."""
        return frozenset((cls.PENDING, cls.UNRESOLVABLE))

    @classmethod
    def counted(cls) -> frozenset[SignatureStatus]:
        """The statuses that count towards a campaign's total: confirmed, whatever came next."""
        return frozenset(cls) - {cls.PENDING, cls.ERASED}


class LetterState(StrEnum):
    CREATED = "created"  # recorded, not being sent (a temporary failure put it back here)
    SENDING = "sending"  # claimed: being handed to the SMTP server
    SENT = "sent"  # the SMTP server took it (250)
    FAILED = "failed"  # the SMTP server refused it for good (5xx)
    HELD = "held"  # not sent: the target's address bounced for good; waits until it is fixed
    BOUNCED = "bounced"  # taken, then a bounce came back for it (hard: 5.x.x); the reason kept
    QUEUED = "queued"  # waits for its day: a digest campaign's letter, or one over the daily cap


def check(column: str, states: type[StrEnum]) -> str:
    """The CHECK constraint's SQL: ``column`` holds one of ``states``."""
    return f"{column} IN ({', '.join(repr(s.value) for s in states)})"
