"""Run a worker process: consumers in threads, a health/metrics server, graceful SIGTERM."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

import pika
from sqlalchemy.engine import Engine

from shared.broker.consumer import Consumer, run_consumers
from shared.broker.declare import connection_parameters
from shared.config import Settings
from shared.db import check_database
from shared.health import serve_health
from shared.logging import error_detail, get_logger
from shared.messages import Envelope
from shared.topology import Topology

log = get_logger(__name__)


def broker_check(url: str) -> Callable[[], None]:
    def check() -> None:
        conn = pika.BlockingConnection(connection_parameters(url, name="dearmp-readyz"))
        conn.close()

    return check


def make_consumers(
    service: str,
    settings: Settings,
    make_handle: Callable[[], Callable[[Envelope], None]],
    threads: int = 1,
    prefetch: int | None = None,
) -> list[Consumer]:
    """``threads`` consumers, each with its own connection and its own handler (and adapters);
    ``prefetch`` defaults to the settings'."""
    return [
        Consumer(
            service=service,
            amqp_url=settings.amqp_url,
            handle=make_handle(),
            topology=Topology(settings.broker_namespace),
            retry_delays=settings.retry_delays,
            max_attempts=settings.max_attempts,
            prefetch=prefetch or settings.prefetch,
            heartbeat=settings.heartbeat,
        )
        for _ in range(threads)
    ]


def install_stop_signals(stop: Callable[[], None]) -> threading.Event:
    stopped = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        stop()
        stopped.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stopped


def run_worker(
    service: str,
    settings: Settings,
    engine: Engine,
    make_handle: Callable[[], Callable[[Envelope], None]],
    threads: int = 1,
    periodic: list[tuple[float, Callable[[], object]]] | None = None,
    prefetch: int | None = None,
) -> None:
    """Block until SIGTERM/SIGINT, then let in-flight messages finish and exit cleanly.
    ``periodic``: (interval seconds, task) pairs run in a background thread until stopped."""
    consumers = make_consumers(service, settings, make_handle, threads, prefetch)
    server = serve_health(
        settings.metrics_port,
        {"database": lambda: check_database(engine), "broker": broker_check(settings.amqp_url)},
        host=settings.metrics_host,
    )
    log.info(
        "worker started",
        queue=consumers[0].queue,
        threads=threads,
        metrics_port=server.server_address[1],
    )

    def stop_all() -> None:
        for consumer in consumers:
            consumer.stop()

    stopped = install_stop_signals(stop_all)
    workers = run_consumers(consumers)
    stopping = threading.Event()
    for interval, task in periodic or []:
        t = threading.Thread(
            target=every, args=(interval, task, stopping), daemon=True, name=f"{service}-periodic"
        )
        t.start()
        workers.append(t)
    while not stopped.wait(1.0):
        pass
    stopping.set()
    for t in workers:
        t.join(timeout=30)
    server.shutdown()
    log.info("worker stopped")


def every(interval: float, task: Callable[[], object], stopping: threading.Event) -> None:
    """Run ``task`` every ``interval`` seconds until ``stopping`` is set; a failure is logged."""
    while not stopping.wait(interval):
        try:
            task()
        except Exception as exc:  # a periodic task reports and tries again next time
            log.warning(
                "periodic task failed",
                task=getattr(task, "__name__", "task"),
                error=type(exc).__name__,
                detail=error_detail(exc),
            )
