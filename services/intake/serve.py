"""``dearmp serve intake``: the web app, plus a consumer thread following signatures' journeys."""

from __future__ import annotations

import threading

import uvicorn

from services.intake.app import create_app
from services.intake.handlers import HANDLERS
from shared.config import Settings
from shared.db import check_database, make_engine
from shared.handling import transactional
from shared.logging import get_logger
from shared.worker import broker_check, make_consumers

log = get_logger(__name__)


def serve(settings: Settings, *, workers_threads: int = 1) -> None:
    engine = make_engine(settings.database_url, pool_size=20)
    app = create_app(
        settings,
        engine,
        ready_checks={
            "database": lambda: check_database(engine),
            "broker": broker_check(settings.amqp_url),
        },
    )
    consumers = make_consumers(
        "intake", settings, lambda: transactional("intake", engine, HANDLERS)
    )
    threads = [
        threading.Thread(target=c.run, name="intake-consumer", daemon=True) for c in consumers
    ]
    for t in threads:
        t.start()
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    log.info("intake listening", url=f"http://{settings.http_host}:{settings.http_port}")
    server.run()  # handles SIGTERM/SIGINT: stops accepting, finishes requests
    for c in consumers:
        c.stop()
    for t in threads:
        t.join(timeout=15)
    log.info("intake stopped")
