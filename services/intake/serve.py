"""``dearmp serve intake``: the web app (``DEARMP_HTTP_WORKERS`` processes), plus a consumer thread
that follows each signature's journey for the thank-you page, and the metrics port."""

from __future__ import annotations

import threading
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from services.intake.app import create_app
from services.intake.handlers import HANDLERS
from services.intake.retention import sweep
from shared.config import ConfigError, Settings, get_settings
from shared.db import check_database, make_engine
from shared.handling import Dispatcher
from shared.health import Check, serve_health
from shared.logging import configure_logging, get_logger
from shared.worker import broker_check, every, make_consumers

log = get_logger(__name__)


def ready_checks(settings: Settings, engine: Engine) -> dict[str, Check]:
    return {"database": lambda: check_database(engine), "broker": broker_check(settings.amqp_url)}


def build_app(settings: Settings) -> FastAPI:
    engine = make_engine(settings.database_url, pool_size=20)
    return create_app(settings, engine, ready_checks=ready_checks(settings, engine))


def app_factory() -> FastAPI:
    """For uvicorn's worker processes (``factory=True``): settings from the environment."""
    settings = get_settings()
    configure_logging("intake", settings.log_level)
    return build_app(settings)


def serve(settings: Settings, threads: int = 1) -> None:
    """One consumer thread for the journey; the web app scales by DEARMP_HTTP_WORKERS (``threads``
    is ignored). ``/metrics`` (with ``/healthz`` and ``/readyz``) is served as the workers serve
    it, on DEARMP_METRICS_HOST:DEARMP_METRICS_PORT (``shared.health.serve_health``), never on
    the public port."""
    if settings.metrics_port == settings.http_port:
        raise ConfigError(
            "DEARMP_METRICS_PORT must differ from DEARMP_HTTP_PORT: metrics are not served on "
            "the public port"
        )
    engine = make_engine(settings.database_url, pool_size=2)
    health = serve_health(
        settings.metrics_port, ready_checks(settings, engine), host=settings.metrics_host
    )
    consumers = make_consumers("intake", settings, lambda: Dispatcher("intake", engine, HANDLERS))
    running = [
        threading.Thread(target=c.run, name="intake-consumer", daemon=True) for c in consumers
    ]
    stopping = threading.Event()
    running.append(
        threading.Thread(
            target=every,
            args=(settings.retention_sweep_seconds, lambda: sweep(engine, settings), stopping),
            name="intake-retention",
            daemon=True,
        )
    )
    for t in running:
        t.start()
    options: dict[str, Any] = dict(
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        # X-Forwarded-For is read by one rule, services/intake/clients.py, not uvicorn's.
        proxy_headers=False,
    )
    log.info(
        "intake listening",
        url=f"http://{settings.http_host}:{settings.http_port}",
        workers=settings.http_workers,
        metrics_port=health.server_address[1],
    )
    if settings.http_workers > 1:
        # Several processes share the port; uvicorn's supervisor handles SIGTERM/SIGINT.
        uvicorn.run(
            "services.intake.serve:app_factory",
            factory=True,
            workers=settings.http_workers,
            **options,
        )  # type: ignore[arg-type]
    else:
        uvicorn.Server(uvicorn.Config(build_app(settings), **options)).run()
    stopping.set()
    for c in consumers:
        c.stop()
    for t in running:
        t.join(timeout=15)
    health.shutdown()
    log.info("intake stopped")
