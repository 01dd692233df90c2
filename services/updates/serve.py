"""``dearmp serve updates``: the subscriber list's consumers, the fan-out of published
updates, and the webhooks (sending, and deleting what is past retention)."""

from __future__ import annotations

from services.updates.fanout import Fanout
from services.updates.handlers import bootstrap
from services.updates.sender import UpdateSender
from services.updates.webhook_sender import WebhookSender, expire
from shared.config import Settings
from shared.db import make_engine
from shared.dkim import signer_for
from shared.smtp import SmtpTimeouts
from shared.worker import run_worker


def serve(settings: Settings, threads: int = 1) -> None:
    engine = make_engine(settings.database_url, pool_size=max(5, threads * 2))
    # One fan-out thread per process, with its own SMTP connection and its own DB connection
    # (replicas share the jobs: each job is worked by one of them at a time).
    sender = UpdateSender(
        settings.smtp_url,
        timeouts=SmtpTimeouts.parse(settings.smtp_timeouts),
        dkim=signer_for(settings),
    )
    fanout = Fanout(engine, settings, sender)
    run_worker(
        "updates",
        settings,
        engine,
        lambda: bootstrap(settings, engine),
        threads,
        periodic=[
            (settings.fanout_sweep_seconds, fanout),
            (settings.webhook_sweep_seconds, WebhookSender(engine, settings)),
            (settings.retention_sweep_seconds, lambda: expire(engine, settings)),
        ],
    )
