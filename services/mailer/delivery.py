"""Sending one email exactly once per (signature, purpose).

1. Claim: one statement writes the letters row as ``sending`` (``sends`` + 1), unless the event
   is already in the inbox, the supporter has been erased, or the row is already ``sent`` or
   ``failed``; then nothing is sent.
2. Outside any transaction: hand the message to SMTP.
3. Record: one statement marks the row ``sent`` (or ``failed``), emits ``letter.failed`` (any
   purpose) or ``letter.sent`` (the letter to its target) through the outbox and, when asked,
   claims the event in the inbox.
Each step is a single statement (atomic on its own, one round trip) unless the caller adds work
to it (``may_send``, ``then``): then it runs in a transaction with that work. A message that
follows another (the supporter's copy after the letter) is claimed in the statement that records
the first as sent: three statements for the pair.

A redelivered event for a sent or failed letter sends nothing. Only a crash between the SMTP
server's acceptance and step 3 can resend; the resend carries the same Message-ID and is counted
in ``letters.sends`` (and the ``dearmp_emails_total{outcome="resend"}`` metric). A temporary
failure that certainly did not hand the message over (no connection, a 4xx answer) gives the
claim back (``sending`` → ``created``, ``sends`` − 1), so ``sends`` > 1 means "may have been
delivered more than once".
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any, Literal
from uuid import UUID

import psycopg
import sqlalchemy as sa
from psycopg.rows import namedtuple_row
from sqlalchemy.engine import Connection, Engine

from services.mailer import verp
from services.mailer.models import erased_supporters, letters
from services.mailer.retention import ADDRESS_RE
from shared import faults, inbox, outbox
from shared.broker.consumer import DATABASE_UNREACHABLE, TransientFailure
from shared.config import Settings
from shared.erased import is_erased as shared_is_erased
from shared.logging import get_logger
from shared.mail import delivery_recipients
from shared.messages import LetterFailed, LetterSent
from shared.metrics import EMAILS
from shared.smtp import PermanentSmtpError, SmtpSender, TemporarySmtpError
from shared.states import LetterState
from shared.supporters import mask_addresses, supporter_key

log = get_logger(__name__)

Outcome = Literal["sent", "failed", "erased", "suppressed", "skipped"]
# Runs in the transaction that records the outcome (sent, failed or erased).
Then = Callable[[Connection, Outcome], None]
# Statements to run with the record of a send, only if it went (e.g. remembering a confirmation
# for its reminder): data-modifying CTE definitions ("name AS (...), ...") and their parameters
# (named apart from the record's own: a ``p_`` prefix). In the record's statement: no
# transaction, no round trip of their own.
OnSent = tuple[str, dict[str, Any]]
ALL_OUTCOMES: frozenset[Outcome] = frozenset(("sent", "failed", "erased", "suppressed"))
# Emails to a campaign's target: when its address bounced for good they wait (``held``); any
# other email (to the supporter) to an address that bounced for good is not sent (``suppressed``).
TARGET_PURPOSES = frozenset(("letter", "fixed_copy", "digest"))


@dataclass
class Outgoing:
    signature_id: UUID
    purpose: str
    campaign: str
    message: EmailMessage
    recipient: str
    supporter_key: str | None = None
    body_text: str | None = None
    # When the supporter signed: an erasure asked for after it stops the email (shared.erased);
    # None counts as before any erasure.
    signed_at: datetime | None = None
    # The campaign's version the letter was rendered from (``letters.campaign_version``).
    campaign_version: int | None = None
    # The keyed hash of ``recipient`` (``bounced_addresses``): set by ``deliver_once``.
    recipient_key: str | None = None


class AddressHeld(TransientFailure):
    """The target's address bounced for good: the email waits (``held``), retried with the
    event's delays until the address is fixed or cleared (services/mailer/bounces/)."""

    def __init__(self, out: Outgoing, reason: str) -> None:
        super().__init__(reason)
        self.out = out


@dataclass(frozen=True)
class Receipt:
    """The event being handled: nothing is sent once it is in the inbox, and it is put there
    with the outcomes named in ``record_on``."""

    consumer: str
    event_id: UUID
    record_on: frozenset[Outcome] = ALL_OUTCOMES


_CLAIM = f"""
    INSERT INTO letters (signature_id, purpose, campaign, state, message_id, recipient, subject,
                         body, supporter_key, sends, created_at, lease_owner, lease_until,
                         campaign_version)
    SELECT CAST(%(signature_id)s AS uuid), %(purpose)s, %(campaign)s, '{LetterState.SENDING}', %(message_id)s,
           %(recipient)s, %(subject)s, CAST(%(body)s AS text),
           CAST(%(supporter_key)s AS varchar), 1, %(now)s, %(lease_owner)s, %(lease_until)s,
           CAST(%(campaign_version)s AS integer)
    WHERE NOT EXISTS (SELECT 1 FROM inbox WHERE consumer = CAST(%(consumer)s AS varchar)
                                            AND event_id = CAST(%(event_id)s AS uuid))
      AND NOT EXISTS (SELECT 1 FROM erased_supporters
                      WHERE supporter_key = CAST(%(supporter_key)s AS varchar)
                        AND (CAST(%(signed_at)s AS timestamptz) IS NULL
                             OR erased_at >= CAST(%(signed_at)s AS timestamptz)))
      AND NOT EXISTS (SELECT 1 FROM bounced_addresses
                      WHERE address_key = CAST(%(recipient_key)s AS varchar)
                        AND cleared_at IS NULL)
    ON CONFLICT ON CONSTRAINT uq_letters_signature_purpose DO UPDATE
       SET state = '{LetterState.SENDING}', sends = letters.sends + 1,
           lease_owner = EXCLUDED.lease_owner, lease_until = EXCLUDED.lease_until,
           recipient = EXCLUDED.recipient, error = NULL
     WHERE letters.state NOT IN ('{LetterState.SENT}', '{LetterState.FAILED}',
                                 '{LetterState.BOUNCED}')
       AND (letters.state <> '{LetterState.SENDING}' OR letters.lease_until IS NULL
            OR letters.lease_until < %(now)s)
       AND NOT (letters.uncertain AND letters.sends >= 2)
    RETURNING id, sends
"""
# Recording an outcome: the row's new state, and (when they apply) the inbox claim for the event
# and the announcing event in the outbox. Data-modifying CTEs run whatever the main statement:
# alone they end in ``SELECT NULL``; with a follow-on message, its claim is the main statement.
#
# The supporter may have been erased while the claim ran: the claim's snapshot predates the
# erasure, and the erasure's scrub could not see the uncommitted claim. Recording then scrubs the
# row as the erasure would have (services/mailer/retention.py), so nothing of theirs stays.
_DONE = """done AS (
        UPDATE letters
           SET state = %(r_state)s, sent_at = %(r_now)s,
               error = CASE WHEN gone THEN regexp_replace(CAST(%(r_error)s AS text),
                                                          %(r_address)s, '[address removed]', 'g')
                            ELSE %(r_error)s END,
               body = CASE WHEN gone THEN NULL ELSE body END,
               subject = CASE WHEN gone THEN '' ELSE subject END,
               recipient = CASE WHEN gone AND purpose <> 'letter' THEN '' ELSE recipient END,
               supporter_key = CASE WHEN gone THEN NULL ELSE letters.supporter_key END,
               scrubbed_at = CASE WHEN gone THEN %(r_now)s ELSE scrubbed_at END
          FROM (SELECT EXISTS (SELECT 1 FROM letters l JOIN erased_supporters e
                                  ON e.supporter_key = l.supporter_key
                                WHERE l.id = %(r_id)s
                                  AND (CAST(%(r_signed_at)s AS timestamptz) IS NULL
                                       OR e.erased_at >= CAST(%(r_signed_at)s AS timestamptz)))
                       AS gone) AS erased
         WHERE id = %(r_id)s)"""
_RECEIPT = """receipt AS (
        INSERT INTO inbox (consumer, event_id, processed_at)
        VALUES (%(r_consumer)s, %(r_event_id)s, %(r_now)s) ON CONFLICT DO NOTHING)"""
_ANNOUNCE = """announced AS (
        INSERT INTO outbox (event_id, routing_key, correlation_id, body, created_at, available_at)
        VALUES (%(o_event_id)s, %(o_routing_key)s, %(o_correlation_id)s, %(o_body)s,
                %(o_created_at)s, %(o_available_at)s))"""
# Which outcomes are announced: every failure (someone may need to act on it), and the letter
# itself reaching its target. A sent confirmation, copy or notice concerns nobody else.
ANNOUNCED_SENT = frozenset(("letter",))


class HeldConnection:
    """The connection one sender (one per consumer thread) keeps for the steps that are a single
    statement: no pool checkout, reset and SQLAlchemy layer around every statement, and psycopg
    prepares the statements after their first uses. Autocommit, outside the engine's pool (so
    no pooled connection is ever left in autocommit). Dropped after any error and opened again
    on the next use: a restarted Postgres costs one failed (retried) event per thread."""

    def __init__(self, engine: Engine) -> None:
        url = engine.url.set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._conn: psycopg.Connection[Any] | None = None

    def one(self, sql: str, params: dict[str, Any]) -> Any:
        """The statement's first row (attribute access, as SQLAlchemy rows), or None."""
        try:
            if self._conn is None:
                self._conn = psycopg.connect(
                    self._conninfo, autocommit=True, row_factory=namedtuple_row
                )
            cur = self._conn.execute(sql, params)
            return cur.fetchone() if cur.description else None
        except psycopg.Error:
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.close()
            except psycopg.Error:
                pass


class Leases:
    """The sending claims this process holds. A claim is a lease (``letters.lease_owner``,
    ``lease_until``): nobody else may send that email before it ends. While a send waits on a
    slow server (up to the final dot's 10 minutes), a thread renews the process's leases every
    third of their length; if the process dies, its leases end and the email may go again
    (same Message-ID, counted in ``sends``)."""

    def __init__(self, engine: Engine, seconds: float) -> None:
        self.engine, self.seconds = engine, seconds
        self._held: dict[int, str] = {}
        self._lock = threading.Lock()
        self._renewer: threading.Thread | None = None

    def owner(self) -> str:
        return f"{_HOST}:{os.getpid()}:{threading.get_ident()}"

    def until(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.seconds)

    @contextmanager
    def holding(self, letter_id: int, owner: str) -> Iterator[None]:
        with self._lock:
            self._held[letter_id] = owner
            if self._renewer is None:
                self._renewer = threading.Thread(
                    target=self._renew_forever, daemon=True, name="lease-renewer"
                )
                self._renewer.start()
        try:
            yield
        finally:
            with self._lock:
                self._held.pop(letter_id, None)

    def _renew_forever(self) -> None:
        while True:
            time.sleep(self.seconds / 3)
            with self._lock:
                held = dict(self._held)
            if held:
                self.renew(held)

    def renew(self, held: dict[int, str]) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.text(_RENEW),
                    {
                        "ids": list(held),
                        "owners": list(held.values()),
                        "until": self.until(),
                    },
                )
        except sa.exc.SQLAlchemyError as exc:  # tried again a third of a lease later
            log.warning("could not renew sending leases", error=type(exc).__name__)


_HOST = socket.gethostname()
_RENEW = f"""
    UPDATE letters SET lease_until = :until
      FROM unnest(CAST(:ids AS bigint[]), CAST(:owners AS varchar[])) AS held(id, owner)
     WHERE letters.id = held.id AND letters.lease_owner = held.owner
       AND letters.state = '{LetterState.SENDING}'
"""
_leases: dict[tuple[Engine, float], Leases] = {}
_leases_lock = threading.Lock()


def leases_for(engine: Engine, seconds: float) -> Leases:
    """The process's one ``Leases`` for this engine (asked for every email: no lock once made)."""
    key = (engine, seconds)
    found = _leases.get(key)
    if found is not None:
        return found
    with _leases_lock:
        if key not in _leases:
            _leases[key] = Leases(engine, seconds)
        return _leases[key]


def is_erased(conn: Connection, out: Outgoing) -> bool:
    if out.supporter_key is None:
        return False
    return shared_is_erased(conn, erased_supporters, out.supporter_key, out.signed_at, wait=False)


class _Steps:
    """Runs each step: on the held connection when it is one statement, else (the caller adds
    work to it: ``may_send``, ``then``) in a transaction with that work."""

    def __init__(self, engine: Engine, held: HeldConnection | None) -> None:
        self.engine = engine
        self.held = held

    def one(self, sql: str, params: dict[str, Any]) -> Any:
        if self.held is not None:
            return self.held.one(sql, params)
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            return conn.exec_driver_sql(sql, params).first()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn


def deliver_once(
    out: Outgoing,
    *,
    engine: Engine,
    sender: SmtpSender,
    settings: Settings,
    correlation_id: str | None,
    receipt: Receipt | None = None,
    may_send: Callable[[Connection], bool] | None = None,
    then: Then | None = None,
    held: HeldConnection | None = None,
    after: Outgoing | None = None,
    on_sent: OnSent | None = None,
) -> Outcome:
    """Send ``out`` unless it was already sent; returns what became of it. ``skipped``: the
    event was handled before, or ``may_send`` said no (nothing done, ``then`` not run).
    ``held``: the caller's own connection for single-statement steps (see HeldConnection).
    ``after``: a message that follows once ``out`` is sent (the supporter's copy after the
    letter; not with ``may_send`` or ``then``): its claim shares the statement that records
    ``out`` as sent, the receipt goes with the last outcome, and that outcome is returned. A
    crash between that statement and the follow-on's hand-over sends the follow-on on
    redelivery with ``sends`` = 2: counted as a possible resend, though it went once.
    ``on_sent``: statements recorded with the send if it went (``OnSent``)."""
    for message in (out, after):
        if message is not None and message.recipient_key is None:
            message.recipient_key = supporter_key(settings.secret_key, message.recipient)
    try:
        return _deliver(
            out,
            engine,
            sender,
            settings,
            correlation_id,
            receipt,
            may_send,
            then,
            held,
            after,
            on_sent,
        )
    except AddressHeld as exc:
        _hold(engine, exc.out, str(exc))
        raise


def _deliver(
    out: Outgoing,
    engine: Engine,
    sender: SmtpSender,
    settings: Settings,
    correlation_id: str | None,
    receipt: Receipt | None,
    may_send: Callable[[Connection], bool] | None,
    then: Then | None,
    held: HeldConnection | None,
    after: Outgoing | None,
    on_sent: OnSent | None,
) -> Outcome:
    steps = _Steps(engine, held)
    leases = leases_for(engine, settings.send_lease_seconds)
    claim = _claim_params(out, receipt, leases)
    if after is not None and (may_send is not None or then is not None or on_sent is not None):
        raise ValueError("a follow-on message cannot be combined with may_send, then or on_sent")
    if may_send is None:
        claimed = steps.one(_CLAIM, claim)
        if claimed is None:
            # With a follow-on, ``out`` sent before does not finish the event: the follow-on may
            # not have gone yet.
            first = receipt
            if after is not None and receipt is not None:
                first = replace(receipt, record_on=receipt.record_on - {"sent"})
            with steps.transaction() as conn:
                outcome = _not_claimed(conn, out, first, then, correlation_id, on_sent)
            if after is None or outcome != "sent":
                return outcome
            return _deliver(
                after,
                engine,
                sender,
                settings,
                correlation_id,
                receipt,
                None,
                None,
                held,
                None,
                None,
            )
    else:
        with steps.transaction() as conn:
            if may_send is not None and not may_send(conn):
                return "skipped"
            claimed = conn.exec_driver_sql(_CLAIM, claim).first()
            if claimed is None:
                return _not_claimed(conn, out, receipt, then, correlation_id, on_sent)
    while True:
        # The record of a send is prepared before the hand-over: after the server's 250 only the
        # statement goes out (a crash before it reaches Postgres resends; once sent, Postgres
        # commits it even if the mailer dies).
        follow = after
        announce = None
        if out.purpose in ANNOUNCED_SENT:
            message_id = out.message["Message-ID"]
            announce = LetterSent(
                signature_id=out.signature_id, purpose=out.purpose, message_id=message_id
            )
        sent_sql, sent = _record_statement(
            claimed.id,
            correlation_id,
            "sent",
            "",
            announce,
            None if follow else receipt,
            follow,
            receipt,
            leases,
            out.signed_at,
            on_sent,
        )
        with leases.holding(claimed.id, claim["lease_owner"]):
            state, error = _hand_over(out, claimed, engine, sender, settings)
        if state == "failed":
            failed = LetterFailed(signature_id=out.signature_id, purpose=out.purpose, reason=error)
            sql, params = _record_statement(
                claimed.id,
                correlation_id,
                "failed",
                error,
                failed,
                receipt,
                signed_at=out.signed_at,
            )
            _run(steps, sql, params, then, state, leases.seconds)
            return state
        sent["r_now"] = datetime.now(UTC)
        if follow is None:
            _run(steps, sent_sql, sent, then, state, leases.seconds)
            return state
        claimed = _run(steps, sent_sql, sent, None, state, leases.seconds)
        faults.point("before_follow_on")
        out, after = follow, None
        if claimed is None:
            with steps.transaction() as conn:
                return _not_claimed(conn, out, receipt, then, correlation_id)


def _claim_params(out: Outgoing, receipt: Receipt | None, leases: Leases) -> dict[str, Any]:
    return {
        "signature_id": out.signature_id,
        "purpose": out.purpose,
        "campaign": out.campaign,
        "message_id": out.message["Message-ID"],
        "recipient": out.recipient,
        "subject": str(out.message["Subject"]),
        "body": out.body_text,
        "supporter_key": out.supporter_key,
        "signed_at": out.signed_at,
        "now": datetime.now(UTC),
        "consumer": receipt.consumer if receipt else None,
        "event_id": receipt.event_id if receipt else None,
        "lease_owner": leases.owner(),
        "lease_until": leases.until(),
        "campaign_version": out.campaign_version,
        "recipient_key": out.recipient_key,
    }


def _hand_over(
    out: Outgoing, claimed: Any, engine: Engine, sender: SmtpSender, settings: Settings
) -> tuple[Literal["sent", "failed"], str]:
    """Give the claimed message to SMTP: ``sent``, or ``failed`` with the server's reason (5xx).
    A temporary failure gives the claim back (when nothing was handed over) and is raised for
    the consumer to retry."""
    if claimed.sends > 1:
        EMAILS.labels(out.purpose, "resend").inc()
        log.warning("resending after an interrupted send", purpose=out.purpose, sends=claimed.sends)
    recipients = delivery_recipients(
        out.message, out.recipient, live=settings.delivery == "live", sandbox_to=settings.sandbox_to
    )
    try:
        sender.send(out.message, to=recipients, return_path=verp.return_path(settings, claimed.id))
    except TemporarySmtpError as exc:
        EMAILS.labels(out.purpose, "temporary_failure").inc()
        if exc.maybe_delivered:
            # The server may have it: resent once at most, after the lease ends (same
            # Message-ID, counted in ``sends``), and shown as "may be duplicated".
            _mark_uncertain(engine, claimed.id)
            EMAILS.labels(out.purpose, "uncertain").inc()
            log.warning("the connection was lost after the message went", purpose=out.purpose)
        else:
            _release(engine, claimed.id)
        raise TransientFailure(str(exc)) from None
    except PermanentSmtpError as exc:
        EMAILS.labels(out.purpose, "failed").inc()
        return "failed", str(exc)
    faults.point("after_smtp")
    EMAILS.labels(out.purpose, "sent").inc()
    return "sent", ""


def _not_claimed(
    conn: Connection,
    out: Outgoing,
    receipt: Receipt | None,
    then: Then | None,
    correlation_id: str | None = None,
    on_sent: OnSent | None = None,
) -> Outcome:
    """Why the claim wrote nothing (the rare path): handled before, erased, already done, being
    sent by someone else (a live lease: retried later), or resent once already after a lost
    connection (then recorded as sent, "may be duplicated", and not sent a third time)."""
    if receipt and inbox.already_processed(conn, receipt.consumer, receipt.event_id):
        log.info("duplicate event ignored", purpose=out.purpose)
        return "skipped"
    outcome: Outcome
    if is_erased(conn, out):
        log.info("supporter erased, nothing sent", purpose=out.purpose)
        outcome = "erased"
    elif (bounced := _bounced(conn, out)) is not None:
        if out.purpose in TARGET_PURPOSES:
            raise AddressHeld(out, f"held: the recipient's address bounced ({bounced})")
        log.info("the address bounced for good, nothing sent", purpose=out.purpose)
        outcome = "suppressed"
    else:
        row = conn.execute(
            sa.select(letters.c.id, letters.c.state, letters.c.lease_until, letters.c.uncertain)
            .where(letters.c.signature_id == out.signature_id, letters.c.purpose == out.purpose)
            .with_for_update()
        ).one()
        now = datetime.now(UTC)
        if row.state == LetterState.SENDING and row.lease_until and row.lease_until >= now:
            raise TransientFailure("another sender holds this email's lease: it may be sending it")
        if row.state in (LetterState.SENT, LetterState.FAILED, LetterState.BOUNCED):
            outcome = "failed" if row.state == LetterState.FAILED else "sent"
            log.info("already delivered, nothing sent", purpose=out.purpose, state=outcome)
        else:  # uncertain and resent once: it went at least once; never a third time
            conn.execute(
                letters.update()
                .where(letters.c.id == row.id)
                .values(
                    state=LetterState.SENT,
                    sent_at=now,
                    error="may be duplicated: the connection was lost after the message went",
                )
            )
            if out.purpose in ANNOUNCED_SENT:
                message_id = out.message["Message-ID"]
                announce = LetterSent(
                    signature_id=out.signature_id, purpose=out.purpose, message_id=message_id
                )
                outbox.add(conn, announce, correlation_id=correlation_id)
            log.warning("not resending again after a second lost connection", purpose=out.purpose)
            outcome = "sent"
    if receipt and outcome in receipt.record_on:
        inbox.claim(conn, receipt.consumer, receipt.event_id)
    if on_sent is not None and outcome == "sent":
        conn.exec_driver_sql(f"WITH {on_sent[0]} SELECT NULL", on_sent[1])
    if then:
        then(conn, outcome)
    return outcome


def _bounced(conn: Connection, out: Outgoing) -> str | None:
    """Why the recipient's address is not sent to (it bounced for good), or None."""
    found = conn.exec_driver_sql(
        "SELECT reason FROM bounced_addresses WHERE address_key = %(key)s AND cleared_at IS NULL",
        {"key": out.recipient_key},
    ).first()
    return None if found is None else str(found.reason)[:200]


_HOLD = f"""
    INSERT INTO letters (signature_id, purpose, campaign, state, message_id, recipient, subject,
                         body, supporter_key, sends, created_at, campaign_version, error)
    VALUES (%(signature_id)s, %(purpose)s, %(campaign)s, '{LetterState.HELD}', %(message_id)s,
            %(recipient)s, %(subject)s, %(body)s, %(supporter_key)s, 0, %(now)s,
            %(campaign_version)s, %(error)s)
    ON CONFLICT ON CONSTRAINT uq_letters_signature_purpose DO UPDATE
       SET state = '{LetterState.HELD}', error = EXCLUDED.error, recipient = EXCLUDED.recipient
     WHERE letters.state IN ('{LetterState.CREATED}', '{LetterState.HELD}')
"""


# A letter that cannot be written (its template fails for this supporter's data, or its message
# cannot be built) is recorded ``failed`` without any hand-over: nothing was sent, and nothing
# will be. The reason starts with UNWRITTEN: the staff pages' banner and the owners' notice
# (services/mailer/problems.py) find these rows by it (``reports.UNWRITTEN_ROWS``). A row the
# letter already has is changed only while nothing may have gone (created, held).
UNWRITTEN = "could not be written: "
_UNWRITTEN = f"""
    INSERT INTO letters (signature_id, purpose, campaign, state, message_id, recipient, subject,
                         body, supporter_key, sends, created_at, sent_at, campaign_version, error)
    VALUES (%(signature_id)s, %(purpose)s, %(campaign)s, '{LetterState.FAILED}', %(message_id)s,
            %(recipient)s, '', NULL, %(supporter_key)s, 0, %(now)s, %(now)s,
            %(campaign_version)s, %(error)s)
    ON CONFLICT ON CONSTRAINT uq_letters_signature_purpose DO UPDATE
       SET state = '{LetterState.FAILED}', error = EXCLUDED.error, sent_at = EXCLUDED.sent_at,
           lease_owner = NULL, lease_until = NULL
     WHERE letters.state IN ('{LetterState.CREATED}', '{LetterState.HELD}')
    RETURNING id
"""


@dataclass(frozen=True)
class Unwritten:
    """A letter that could not be written, as its ``letters`` row records it."""

    signature_id: UUID
    campaign: str
    message_id: str
    recipient: str
    supporter_key: str | None
    campaign_version: int | None
    reason: str
    purpose: str = "letter"


def record_unwritten(conn: Connection, letter: Unwritten, correlation_id: str | None) -> bool:
    """In the caller's transaction (with its inbox claim): the letter ``failed`` with why, and
    ``letter.failed`` through the outbox, so intake marks the signature failed. Returns False
    (nothing emitted) when the letter's row had gone further already (sent, failed, sending,
    queued): a redelivered event then announces nothing twice. Addresses in the reason are
    masked as everywhere else."""
    reason = UNWRITTEN + mask_addresses(letter.reason)[:500]
    row = conn.exec_driver_sql(
        _UNWRITTEN,
        {
            "signature_id": letter.signature_id,
            "purpose": letter.purpose,
            "campaign": letter.campaign,
            "message_id": letter.message_id,
            "recipient": letter.recipient,
            "supporter_key": letter.supporter_key,
            "now": datetime.now(UTC),
            "campaign_version": letter.campaign_version,
            "error": reason,
        },
    ).first()
    if row is None:
        return False
    failed = LetterFailed(signature_id=letter.signature_id, purpose=letter.purpose, reason=reason)
    outbox.add(conn, failed, correlation_id=correlation_id)
    EMAILS.labels(letter.purpose, "unwritten").inc()
    return True


def _hold(engine: Engine, out: Outgoing, reason: str) -> None:
    """Show the email as waiting (``held``, with why) while its target's address is flagged."""
    params = {
        "signature_id": out.signature_id,
        "purpose": out.purpose,
        "campaign": out.campaign,
        "message_id": out.message["Message-ID"],
        "recipient": out.recipient,
        "subject": str(out.message["Subject"]),
        "body": out.body_text,
        "supporter_key": out.supporter_key,
        "now": datetime.now(UTC),
        "campaign_version": out.campaign_version,
        "error": reason,
    }
    with engine.begin() as conn:
        conn.exec_driver_sql(_HOLD, params)
    log.info("email held: its recipient's address bounced", purpose=out.purpose)


def _mark_uncertain(engine: Engine, letter_id: int) -> None:
    try:
        with engine.begin() as conn:
            conn.execute(
                letters.update()
                .where(letters.c.id == letter_id, letters.c.state == LetterState.SENDING)
                .values(uncertain=True)
            )
    except sa.exc.SQLAlchemyError:
        log.warning("could not mark the letter as maybe delivered")


def _release(engine: Engine, letter_id: int) -> None:
    """The server certainly did not take the message: undo the claim, so ``sends`` keeps
    counting only hand-overs that may have reached it. If this fails, the count errs high."""
    try:
        with engine.begin() as conn:
            conn.execute(
                letters.update()
                .where(letters.c.id == letter_id, letters.c.state == LetterState.SENDING)
                .values(
                    state=LetterState.CREATED,
                    sends=letters.c.sends - 1,
                    lease_owner=None,
                    lease_until=None,
                )
            )
    except sa.exc.SQLAlchemyError:
        log.warning("could not release the letter after a temporary failure")


def _record_statement(
    letter_id: int,
    correlation_id: str | None,
    state: Literal["sent", "failed"],
    error: str,
    event: LetterSent | LetterFailed | None,
    receipt: Receipt | None,
    follow: Outgoing | None = None,
    follow_receipt: Receipt | None = None,
    leases: Leases | None = None,
    signed_at: datetime | None = None,
    on_sent: OnSent | None = None,
) -> tuple[str, dict[str, Any]]:
    """The statement that records the outcome, with its event and, for an outcome in
    ``receipt.record_on``, the receipt. With ``follow``, it also claims that message (the
    receipt given is the one its claim checks) and returns the claimed row."""
    ctes = [_DONE]
    params: dict[str, Any] = {
        "r_state": state,
        "r_error": error or None,
        "r_now": datetime.now(UTC),
        "r_id": letter_id,
        "r_address": ADDRESS_RE,
        "r_signed_at": signed_at,
    }
    if receipt is not None and state in receipt.record_on:
        ctes.append(_RECEIPT)
        params.update(r_consumer=receipt.consumer, r_event_id=receipt.event_id)
    if event is not None:
        ctes.append(_ANNOUNCE)
        row = outbox.row_for(event, correlation_id=correlation_id)
        params.update({f"o_{k}": v for k, v in row.items()})
    if on_sent is not None and state == "sent":
        ctes.append(on_sent[0])
        params.update(on_sent[1])
    sql = "WITH " + ", ".join(ctes)
    if follow is not None:
        assert leases is not None
        params.update(_claim_params(follow, follow_receipt, leases))
        return sql + _CLAIM, params
    return sql + " SELECT NULL", params


def _run(
    steps: _Steps,
    sql: str,
    params: dict[str, Any],
    then: Then | None,
    state: Outcome,
    patience: float = 60.0,
) -> Any:
    """Run a record statement (with ``then``'s work in its transaction); its first row.

    The mail server has answered by now: if the statement cannot reach PostgreSQL (a restart),
    it is tried again, with growing pauses, for up to ``patience`` seconds (the sending lease:
    nobody else may send this email meanwhile). Giving up at the first error left the row
    ``sending`` and the email went again once the lease ended (found by the soak, docs/soak.md).
    A statement interrupted by a lost connection was not committed, so running it again is the
    first run; one that did commit finds its row no longer ``sending`` and changes nothing."""
    deadline = time.monotonic() + patience
    pause = 0.2
    while True:
        try:
            if then is None:
                return steps.one(sql, params)
            with steps.transaction() as conn:
                row = conn.exec_driver_sql(sql, params).first()
                then(conn, state)
            return row
        except DATABASE_UNREACHABLE as exc:  # PostgreSQL restarted, or failed over
            if time.monotonic() + pause > deadline:
                raise
            log.warning(
                "cannot record a send yet, trying again",
                outcome=state,
                error=type(exc).__name__,
                retry_in=pause,
            )
            time.sleep(pause)
            pause = min(pause * 2, 5.0)
