"""``dearmp serve relay``: move outbox rows to RabbitMQ (several relays may run at once)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from shared import inbox
from shared.broker.declare import declare_all
from shared.broker.publisher import ConfirmingPublisher
from shared.config import Settings
from shared.db import check_database, make_engine
from shared.health import serve_health
from shared.logging import get_logger
from shared.outbox import Relay, prune
from shared.topology import Topology
from shared.worker import broker_check, install_stop_signals

log = get_logger(__name__)


def serve(settings: Settings, threads: int = 1) -> None:
    topology = Topology(settings.broker_namespace)
    engine = make_engine(settings.database_url, pool_size=max(2, threads + 1))
    stopping = threading.Event()
    install_stop_signals(stopping.set)
    # Queues must exist before events flow, or the first events would come back unroutable.
    while not stopping.is_set():
        try:
            declare_all(settings.amqp_url, topology, settings.retry_delays)
            break
        except Exception as exc:
            log.warning("broker not reachable yet", error=type(exc).__name__)
            stopping.wait(2)
    server = serve_health(
        settings.metrics_port,
        {"database": lambda: check_database(engine), "broker": broker_check(settings.amqp_url)},
        host=settings.metrics_host,
    )
    relays = [
        Relay(
            engine,
            ConfirmingPublisher(
                settings.amqp_url, topology.events_exchange, heartbeat=settings.heartbeat
            ),
            batch_size=settings.relay_batch_size,
        )
        for _ in range(threads)
    ]
    workers = [
        threading.Thread(
            target=r.run, args=(stopping, settings.relay_idle_sleep), daemon=True, name=f"relay-{i}"
        )
        for i, r in enumerate(relays)
    ]
    for w in workers:
        w.start()
    log.info("relay started", threads=threads, metrics_port=server.server_address[1])
    # Sent events carry supporters' details: keep them only as long as an operator may need them.
    retention = timedelta(days=settings.outbox_retention_days)
    next_prune = 0.0
    while not stopping.wait(1.0):
        if time.monotonic() >= next_prune:
            next_prune = time.monotonic() + 600
            try:
                removed = prune(engine, retention)
                if removed:
                    log.info("pruned sent outbox events", count=removed)
                with engine.begin() as conn:
                    forgotten = inbox.prune(
                        conn, datetime.now(UTC) - timedelta(days=settings.inbox_retention_days)
                    )
                if forgotten:
                    log.info("pruned handled events from the inbox", count=forgotten)
            except Exception as exc:  # the database may be away; try again next time
                log.warning("outbox pruning failed", error=type(exc).__name__)
    for w in workers:
        w.join(timeout=15)
    for r in relays:
        r.publisher.close()
    server.shutdown()
    log.info("relay stopped")
