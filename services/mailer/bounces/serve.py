"""``dearmp serve bounces``: an SMTP receiver (aiosmtpd) for the bounces the operator's mail server
forwards (every address ``bounces+…@DEARMP_MAIL_DOMAIN``), on ``DEARMP_BOUNCES_HOST``:``PORT``.

Each message is read (``parse.py``) and recorded (``record.py``). It is accepted (250) whatever
it says, so the forwarding server neither retries nor bounces it back to us: a message that names
none of our emails (no VERP address, or one whose MAC is wrong: forged), an auto-reply, and one
that cannot be read at all (malformed; any error but the database's being unreachable) are
logged without any personal data (the error's class and where it happened, never its message or
the mail's text) and dropped. Only when the database cannot be reached (``OperationalError``,
``InterfaceError``: a lost or refused connection, a lock or serialisation timeout) is it refused
with 451, so the forwarding server keeps it and tries again; a value the database refuses is not
retried for ever. A health server (``/healthz``, ``/readyz``,
``/metrics``) runs on ``DEARMP_METRICS_PORT`` as for every worker.
"""

from __future__ import annotations

import asyncio
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from services.mailer.bounces.parse import letter_named, parse, read_bounce
from services.mailer.bounces.record import record_bounce
from shared.config import Settings
from shared.db import check_database, make_engine
from shared.health import serve_health
from shared.logging import frames_of, get_logger
from shared.worker import install_stop_signals

log = get_logger(__name__)
MAX_SIZE = 10 * 1024 * 1024


class BounceHandler:
    def __init__(self, engine: Engine, secret: str) -> None:
        self.engine, self.secret = engine, secret

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        content = envelope.content or b""
        data = content.encode() if isinstance(content, str) else bytes(content)
        recipients = [str(r) for r in envelope.rcpt_tos]
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.take, recipients, data)
        except (OperationalError, InterfaceError):
            log.warning("bounce not recorded: the database cannot be reached; refused for now")
            return "451 4.3.0 Try again later"
        except Exception as exc:  # noqa: BLE001 - whatever a stranger's mail does: 250, logged
            log.warning(
                "message to the bounce address not read: accepted and dropped",
                error=type(exc).__name__,
                where=frames_of(exc),
            )
        return "250 OK"

    def take(self, recipients: list[str], data: bytes) -> str:
        """Record one forwarded message; returns what became of it (for the log and tests)."""
        message = parse(data)
        letter_id = letter_named(recipients, message, self.secret)
        if letter_id is None:
            log.warning("bounce dropped: it names none of our emails (no return path, or forged)")
            return "dropped"
        failures = read_bounce(message)
        if not failures:
            log.info(
                "message to a return path dropped: no failure (an auto-reply, or no bounce)",
                letter_id=letter_id,
            )
            return "no_failure"
        outcome = record_bounce(self.engine, self.secret, letter_id, failures)
        read = min(failures, key=lambda b: b.kind != "hard")  # what it said; outcome: what it did
        log.info(
            "bounce recorded",
            letter_id=letter_id,
            read=read.kind,
            status=read.status,
            how=read.how,
            outcome=outcome,
        )
        return outcome


def start_receiver(settings: Settings, engine: Engine) -> Controller:
    controller = Controller(
        BounceHandler(engine, settings.secret_key),
        hostname=settings.bounces_host,
        port=settings.bounces_port,
        data_size_limit=MAX_SIZE,
    )
    controller.start()
    return controller


def serve(settings: Settings, threads: int = 1) -> None:
    """Block until SIGTERM/SIGINT; ``threads`` is accepted as for every ``dearmp serve``."""
    engine = make_engine(settings.database_url)
    controller = start_receiver(settings, engine)
    health = serve_health(
        settings.metrics_port,
        {"database": lambda: check_database(engine)},
        host=settings.metrics_host,
    )
    log.info(
        "bounces started",
        smtp=f"{settings.bounces_host}:{settings.bounces_port}",
        metrics_port=health.server_address[1],
    )
    done = threading.Event()
    stopped = install_stop_signals(done.set)
    while not stopped.wait(1.0):
        pass
    controller.stop()
    health.shutdown()
    engine.dispose()
    log.info("bounces stopped")
