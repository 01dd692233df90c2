"""Emailing a published update to every subscriber of its campaign: the updates worker's periodic
task (``dearmp serve updates``).

- **One worker per job.** A sweep takes a runnable job under a session advisory lock on its own
  connection: any number of replicas can run, and a job is worked by at most one of them at a
  time. A worker that dies loses its connection, and with it the lock.
- **Keyset pages.** Subscribers are recorded as deliveries a page at a time (``id > cursor ORDER BY
  id LIMIT page``, one statement that also moves the cursor), and sent a batch at a time: the
  list is never held in memory. One delivery per (job, subscriber), by a unique constraint.
- **Exactly once, but for one message per crash.** A delivery is marked ``sending`` before its
  copy goes and ``sent`` right after: one statement marks the previous copy sent and claims the
  next (``marks.py``). Each mark commits on its own, with ``synchronous_commit`` off: the commit
  does not wait for the WAL flush, survives the worker being killed (the WAL is in Postgres'
  memory, flushed within ``wal_writer_delay``) and is lost only if Postgres itself crashes. The
  mark travels while the SMTP envelope (MAIL, RCPT) is exchanged, and the copy's content goes only
  once it is in, so a worker taking over a job finds at most one delivery still ``sending`` per
  crash: the only copy that may have gone out twice. It counts and logs them
  (``possible_duplicates``) and sends them again, with the same Message-ID.
- **Unsubscribes win.** The statement that marks a delivery ``sending`` reads the subscriber's
  current choice: someone who left before their copy went out is ``skipped``.
- **SMTP trouble.** A 4xx answer or a lost connection puts that delivery back and pauses the job
  (``waiting``, retried after a growing delay); nothing is dropped. A connection lost after the
  copy's content went out counts it in ``possible_duplicates`` (the server may have it). A 5xx
  answer for one address marks that delivery ``failed`` and the fan-out goes on.
- **Bounded sweeps.** A sweep works for at most ``fanout_slice_seconds`` then lets the job go, so
  a stopping worker finishes quickly and replicas share the work.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.updates.compose import Recipient, UpdateContent, UpdateMail, sender_name
from services.updates.marks import Marks
from services.updates.models import fanout_jobs
from services.updates.sender import PermanentSmtpError, TemporarySmtpError, UpdateSender
from services.updates.wire import WireFormat
from shared import faults
from shared.config import Settings
from shared.logging import get_logger
from shared.mail import INTENDED_HEADER, delivery_recipients
from shared.metrics import EMAILS
from shared.reference import campaign_updates, campaigns, organisations
from shared.supporters import mask_addresses

log = get_logger(__name__)

# Advisory lock keys: this base plus the job id (clear of the int4 hashtext() keys used elsewhere).
LOCK_BASE = 0x6675_0000_0000
PURPOSE = "update"

_RUNNABLE = sa.text(
    "SELECT id FROM fanout_jobs WHERE status <> 'done' AND retry_at <= :now "
    "ORDER BY retry_at, id LIMIT 20"
)
_TRY_LOCK = sa.text("SELECT pg_try_advisory_lock(:key)")
_UNLOCK = sa.text("SELECT pg_advisory_unlock(:key)")
_JOB = sa.select(fanout_jobs).where(fanout_jobs.c.id == sa.bindparam("job"))
_INTERRUPTED = sa.text(
    "UPDATE update_deliveries SET state = 'pending' "
    "WHERE job_id = :job AND subscriber_id > :after AND state = 'sending' RETURNING id"
)
# One statement, so the page and the cursor move together.
_RECORD_PAGE = sa.text("""
WITH page AS (
    SELECT id FROM subscribers
    WHERE campaign = :campaign AND id > :cursor AND id <= :upto AND subscribed
    ORDER BY id LIMIT :page
), recorded AS (
    INSERT INTO update_deliveries (job_id, subscriber_id, state, sends)
    SELECT :job, id, 'pending', 0 FROM page ORDER BY id
    ON CONFLICT (job_id, subscriber_id) DO NOTHING
    RETURNING 1
)
UPDATE fanout_jobs
SET cursor = COALESCE((SELECT max(id) FROM page), cursor),
    recorded = recorded + (SELECT count(*) FROM recorded),
    updated_at = :now
WHERE id = :job
RETURNING (SELECT count(*) FROM page) AS paged
""")
_PENDING = sa.text("""
SELECT d.id, d.subscriber_id, s.signature_id, s.email, s.first_name, s.language
FROM update_deliveries d JOIN subscribers s ON s.id = d.subscriber_id
WHERE d.job_id = :job AND d.subscriber_id > :after AND d.state = 'pending'
ORDER BY d.subscriber_id LIMIT :limit
""")
_PUT_BACK = sa.text(
    "UPDATE update_deliveries SET state = 'pending', sends = sends - 1 "
    "WHERE id = :id AND state = 'sending'"
)
# The connection was lost after the copy went out: the server may have it. Put back to be sent
# again, and counted as a possible duplicate, as a take-over counts what a dead worker left.
_PUT_BACK_MAYBE_SENT = sa.text("""
WITH back AS (
    UPDATE update_deliveries SET state = 'pending'
    WHERE id = :id AND state = 'sending' RETURNING job_id
)
UPDATE fanout_jobs SET possible_duplicates = possible_duplicates + 1
WHERE id IN (SELECT job_id FROM back)
""")
_COUNT = sa.text("""
UPDATE fanout_jobs
SET sent = sent + :sent, skipped = skipped + :skipped, failed = failed + :failed,
    finished_cursor = GREATEST(finished_cursor, :finished), status = 'running', pauses = 0,
    updated_at = :now
WHERE id = :job
""")
_FINISH = sa.text("""
UPDATE fanout_jobs j
SET status = 'done', finished_at = :now, updated_at = :now, last_error = NULL,
    total = c.total, sent = c.sent, skipped = c.skipped, failed = c.failed
FROM (
    SELECT count(*) AS total,
           count(*) FILTER (WHERE state = 'sent') AS sent,
           count(*) FILTER (WHERE state = 'skipped') AS skipped,
           count(*) FILTER (WHERE state = 'failed') AS failed
    FROM update_deliveries WHERE job_id = :job
) c
WHERE j.id = :job
RETURNING j.total, j.sent, j.skipped, j.failed, j.possible_duplicates
""")


class _Headers(dict[str, str]):
    """The part of a message ``delivery_recipients`` touches: deleting and setting a header."""

    def __delitem__(self, name: str) -> None:
        self.pop(name, None)


@dataclass(frozen=True)
class Outgoing:
    recipient: Recipient
    to: list[str]
    data: bytes | None  # None: to be built by the email package


class Paused(Exception):
    """The SMTP server cannot take mail now: the job waits and is tried again later."""


@dataclass
class Tally:
    sent: int = 0
    skipped: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.sent + self.skipped + self.failed


_MARK_IN_DOUBT = sa.text(
    "UPDATE update_deliveries SET state = :state, sent_at = now(), error = :error "
    "WHERE id = :id AND state = 'sending'"
)


@dataclass
class Fanout:
    """The periodic task: ``Fanout(engine, settings, sender)()`` works for one bounded sweep."""

    engine: Engine
    settings: Settings
    sender: UpdateSender
    # A copy the SMTP server took whose mark was lost with the connection (PostgreSQL
    # restarted): marked first thing on the next sweep, not sent again (found by the soak).
    _unmarked: tuple[int, str, str | None] | None = field(default=None, init=False)

    def __call__(self) -> int:
        """Work runnable jobs for at most ``fanout_slice_seconds``; return deliveries handled."""
        deadline = time.monotonic() + self.settings.fanout_slice_seconds
        handled = 0
        if self._unmarked is not None:
            done, outcome, error = self._unmarked
            with self.engine.begin() as conn:
                conn.execute(_MARK_IN_DOUBT, {"id": done, "state": outcome, "error": error})
            log.info("a copy delivered before the database went away is marked", outcome=outcome)
            self._unmarked = None
        # On any failure the connections are dropped, not returned to the pool: that ends their
        # sessions, and with them the advisory lock, the session setting and any mark in flight.
        with self.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            try:
                job = self._claim(conn)
                if job is None:
                    return 0
                with self.engine.connect() as marks_conn:
                    marks_conn.execution_options(isolation_level="AUTOCOMMIT")
                    made: Marks | None = None
                    try:
                        marks = made = Marks(marks_conn)
                        while job is not None:
                            handled += self._work(conn, marks, job, deadline)
                            conn.execute(_UNLOCK, {"key": LOCK_BASE + job.id})
                            job = self._claim(conn) if time.monotonic() < deadline else None
                        marks_conn.exec_driver_sql("RESET synchronous_commit")
                    except BaseException:
                        if made is not None and made.in_doubt is not None:
                            self._unmarked = made.in_doubt
                        marks_conn.invalidate()
                        raise
            except BaseException:
                conn.invalidate()
                raise
            finally:
                self.sender.close()
        return handled

    # -- taking a job --------------------------------------------------------------------------
    def _claim(self, conn: Connection) -> Any:
        now = datetime.now(UTC)
        for job_id in conn.execute(_RUNNABLE, {"now": now}).scalars().all():
            if not conn.execute(_TRY_LOCK, {"key": LOCK_BASE + job_id}).scalar_one():
                continue  # another worker has it
            job = conn.execute(_JOB, {"job": job_id}).one()
            if job.status != "done" and job.retry_at <= now:
                self._take_over(conn, job)
                return job
            conn.execute(_UNLOCK, {"key": LOCK_BASE + job_id})
        return None

    def _take_over(self, conn: Connection, job: Any) -> None:
        """Copies a dead worker left ``sending`` may have gone out: count them, send them again."""
        interrupted = len(
            conn.execute(_INTERRUPTED, {"job": job.id, "after": job.finished_cursor}).all()
        )
        if interrupted:
            conn.execute(
                fanout_jobs.update()
                .where(fanout_jobs.c.id == job.id)
                .values(possible_duplicates=fanout_jobs.c.possible_duplicates + interrupted)
            )
            EMAILS.labels(PURPOSE, "resend").inc(interrupted)
        where = {"job": job.id, "campaign": job.campaign, "update": job.update_number}
        if interrupted:
            log.warning(
                "fan-out taken over after an interrupted send: these copies are sent again and "
                "may arrive twice",
                possible_duplicates=interrupted,
                **where,
            )
        else:
            log.info("fan-out resumed" if job.cursor else "fan-out started", **where)

    # -- working it ----------------------------------------------------------------------------
    def _work(self, conn: Connection, marks: Marks, job: Any, deadline: float) -> int:
        content = load_content(conn, job.campaign, job.update_number)
        if content is None:
            log.error("fan-out of an update that does not exist", job=job.id)
            self._pause(conn, job.id, job.pauses, "the update is not in campaign_updates")
            return 0
        mail = UpdateMail(content, self.settings)
        wire = WireFormat(mail)
        handled, after = 0, job.finished_cursor
        while time.monotonic() < deadline:
            batch = conn.execute(
                _PENDING, {"job": job.id, "after": after, "limit": self.settings.fanout_batch}
            ).all()
            if not batch:
                if self._record_page(conn, job) == 0:
                    self._finish(conn, job)
                    return handled
                continue
            tally = Tally()
            try:
                self._send_batch(conn, marks, mail, wire, batch, tally)
            except Paused as exc:
                if tally.total:  # some progress: the pauses in a row start again
                    self._count(conn, job.id, tally, finished=after)
                self._pause(conn, job.id, 0 if tally.total else job.pauses, str(exc))
                return handled + tally.total
            after = batch[-1].subscriber_id
            self._count(conn, job.id, tally, finished=after)
            handled += tally.total
        return handled

    def _record_page(self, conn: Connection, job: Any) -> int:
        cursor = conn.execute(
            sa.select(fanout_jobs.c.cursor).where(fanout_jobs.c.id == job.id)
        ).scalar_one()
        return int(
            conn.execute(
                _RECORD_PAGE,
                {
                    "job": job.id,
                    "campaign": job.campaign,
                    "cursor": cursor,
                    "upto": job.upto,
                    "page": self.settings.fanout_page,
                    "now": datetime.now(UTC),
                },
            ).scalar_one()
        )

    def _send_batch(
        self,
        conn: Connection,
        marks: Marks,
        mail: UpdateMail,
        wire: WireFormat,
        batch: Sequence[Any],
        tally: Tally,
    ) -> None:
        ahead: dict[int, Outgoing] = {}  # the next copy, written while the server takes this one

        def outgoing(index: int) -> Outgoing:
            return ahead.pop(index, None) or self._write(mail, wire, batch[index])

        def write_ahead(index: int) -> None:
            if index < len(batch) and index not in ahead:
                ahead[index] = self._write(mail, wire, batch[index])

        done: int | None = None  # delivered, not yet marked
        for index, row in enumerate(batch):
            # Mark the previous copy sent and claim this one; the answer is needed only before
            # this copy's content goes to the SMTP server.
            marks.begin(done=done, outcome="sent", claim=row.id)
            done = None
            faults.point("fanout_before_smtp")
            copy = outgoing(index)
            try:
                delivered = self._deliver(
                    mail,
                    copy,
                    ready=lambda: marks.result() == "sending",
                    meanwhile=functools.partial(write_ahead, index + 1),
                )
            except TemporarySmtpError as exc:
                if marks.result() == "sending":
                    if exc.maybe_delivered:
                        conn.execute(_PUT_BACK_MAYBE_SENT, {"id": row.id})
                        EMAILS.labels(PURPOSE, "resend").inc()
                    else:
                        conn.execute(_PUT_BACK, {"id": row.id})
                raise Paused(str(exc)) from None
            except PermanentSmtpError as exc:
                if marks.result() == "sending":
                    marks.mark(done=row.id, outcome="failed", error=mask_addresses(str(exc)))
                    tally.failed += 1
                else:
                    tally.skipped += marks.result() == "skipped"
                continue
            if not delivered:  # skipped: they left; None: gone (erased)
                tally.skipped += marks.result() == "skipped"
                continue
            faults.point("fanout_after_smtp")
            done = row.id
            tally.sent += 1
        if done is not None:
            marks.mark(done=done, outcome="sent")

    def _write(self, mail: UpdateMail, wire: WireFormat, row: Any) -> Outgoing:
        """One subscriber's copy, with its envelope under the sandbox rule (``shared.mail``),
        asked with a bare header map: building a message per copy costs more than sending it."""
        recipient = Recipient(row.id, row.signature_id, row.email, row.first_name, row.language)
        headers = _Headers()
        to = delivery_recipients(
            headers,  # type: ignore[arg-type]
            recipient.email,
            live=self.settings.delivery == "live",
            sandbox_to=self.settings.sandbox_to,
        )
        data = wire.render(recipient.email, mail.copy_for(recipient), headers.get(INTENDED_HEADER))
        return Outgoing(recipient, to, data)

    def _deliver(
        self,
        mail: UpdateMail,
        copy: Outgoing,
        *,
        ready: Callable[[], bool],
        meanwhile: Callable[[], object],
    ) -> bool:
        """Send one copy once ``ready()`` says so; False if it said no (nothing was sent)."""
        if copy.data is not None:
            return self.sender.send_bytes(
                copy.data, sender=mail.from_addr, to=copy.to, ready=ready, meanwhile=meanwhile
            )
        if not ready():
            return False
        # An address the fast path will not write: built by the email package, slow and safe.
        message = mail.build(copy.recipient)
        to = delivery_recipients(
            message,
            copy.recipient.email,
            live=self.settings.delivery == "live",
            sandbox_to=self.settings.sandbox_to,
        )
        self.sender.send(message, to=to)
        return True

    # -- bookkeeping (once per batch) ----------------------------------------------------------
    def _count(self, conn: Connection, job_id: int, tally: Tally, *, finished: int) -> None:
        conn.execute(
            _COUNT,
            {
                "job": job_id,
                "sent": tally.sent,
                "skipped": tally.skipped,
                "failed": tally.failed,
                "finished": finished,
                "now": datetime.now(UTC),
            },
        )
        for outcome in ("sent", "skipped", "failed"):
            if getattr(tally, outcome):
                EMAILS.labels(PURPOSE, outcome).inc(getattr(tally, outcome))

    def _pause(self, conn: Connection, job_id: int, pauses: int, reason: str) -> None:
        wait = min(
            self.settings.fanout_pause_seconds * 2**pauses, self.settings.fanout_pause_max_seconds
        )
        now = datetime.now(UTC)
        conn.execute(
            fanout_jobs.update()
            .where(fanout_jobs.c.id == job_id)
            .values(
                status="waiting",
                pauses=fanout_jobs.c.pauses + 1,
                retry_at=now + timedelta(seconds=wait),
                last_error=mask_addresses(reason)[:300],
                updated_at=now,
            )
        )
        EMAILS.labels(PURPOSE, "temporary_failure").inc()
        log.warning(
            "fan-out paused", job=job_id, retry_in=wait, reason=mask_addresses(reason)[:200]
        )

    def _finish(self, conn: Connection, job: Any) -> None:
        counts = conn.execute(_FINISH, {"job": job.id, "now": datetime.now(UTC)}).one()
        log.info(
            "fan-out finished",
            job=job.id,
            campaign=job.campaign,
            update=job.update_number,
            **counts._asdict(),
        )


def load_content(conn: Connection, campaign: str, number: int) -> UpdateContent | None:
    row = conn.execute(
        sa.select(
            campaign_updates.c.title,
            campaign_updates.c.body,
            campaigns.c.title.label("ct"),
            organisations.c.sender_name,
        )
        .join(campaigns, campaigns.c.slug == campaign_updates.c.campaign)
        .outerjoin(organisations, organisations.c.slug == campaigns.c.organisation)
        .where(campaign_updates.c.campaign == campaign, campaign_updates.c.number == number)
    ).first()
    if row is None:
        return None
    sender = sender_name(row.sender_name)
    return UpdateContent(campaign, row.ct, number, row.title, row.body, sender)
