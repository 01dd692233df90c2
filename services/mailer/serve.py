"""``dearmp serve mailer``: the mailer's consumers, its confirmation reminders, the reply
questions, the owners' notices of letters that could not be written (problems.py) and its
retention sweep, wired to real SMTP and Postgres."""

from __future__ import annotations

from services.mailer.digests import send_due_digests
from services.mailer.handlers import MailerDeps, bootstrap, make_deps
from services.mailer.pauses import process_pause
from services.mailer.problems import SWEEP_SECONDS, send_problem_notices
from services.mailer.reminders import send_due_reminders
from services.mailer.replies import send_due_reply_questions
from services.mailer.retention import scrub_expired
from services.mailer.scheduled import release_due_letters
from shared.config import Settings
from shared.db import make_engine
from shared.throttle import TokenBucket
from shared.worker import run_worker


def serve(settings: Settings, threads: int = 1) -> None:
    engine = make_engine(settings.database_url, pool_size=max(5, threads * 2))
    limiter = TokenBucket(settings.smtp_rate)  # one per process, shared by every sender
    pause = process_pause(settings, engine)  # likewise: the server refuses our set-up
    reminder_deps = make_deps(settings, engine, limiter, pause)  # its own SMTP connection
    scheduled_deps = make_deps(settings, engine, limiter, pause)  # likewise
    reply_deps = make_deps(settings, engine, limiter, pause)  # likewise (its own thread)
    problem_deps = make_deps(settings, engine, limiter, pause)  # likewise
    run_worker(
        "mailer",
        settings,
        engine,
        lambda: bootstrap(settings, engine, limiter, pause),
        threads,
        periodic=[
            (settings.reminder_sweep_seconds, lambda: send_due_reminders(reminder_deps)),
            (settings.reply_sweep_seconds, lambda: send_due_reply_questions(reply_deps)),
            (settings.scheduled_sweep_seconds, lambda: send_scheduled(scheduled_deps)),
            (SWEEP_SECONDS, lambda: send_problem_notices(problem_deps)),
            (settings.retention_sweep_seconds, lambda: scrub_expired(engine, settings)),
        ],
        prefetch=settings.mailer_prefetch,
    )


def send_scheduled(deps: MailerDeps) -> int:
    """Letters past the daily cap whose day has come, then the digests of the days that are
    over (digests.py); returns how many emails went."""
    return release_due_letters(deps) + send_due_digests(deps)
