"""``dearmp status``: what an operator checks first."""

from __future__ import annotations

from typing import Any

import pika
import pika.exceptions
import sqlalchemy as sa

from services.mailer.models import letters
from shared.broker.declare import connection_parameters
from shared.config import Settings
from shared.db import make_engine
from shared.outbox import backlog
from shared.topology import SERVICES, Topology


def queue_depths(settings: Settings) -> dict[str, Any]:
    topology = Topology(settings.broker_namespace)
    out: dict[str, Any] = {}
    try:
        conn = pika.BlockingConnection(
            connection_parameters(settings.amqp_url, name="dearmp-status")
        )
    except pika.exceptions.AMQPError:
        return {"error": "cannot reach RabbitMQ (DEARMP_AMQP_URL)"}
    try:
        for service in SERVICES:
            for name in (topology.queue(service), topology.dead_letter_queue(service)):
                channel = conn.channel()
                try:
                    ok = channel.queue_declare(name, passive=True).method
                    out[name] = {"messages": ok.message_count, "consumers": ok.consumer_count}
                    channel.close()
                except pika.exceptions.ChannelClosedByBroker:
                    out[name] = {"messages": None, "consumers": None, "missing": True}
    finally:
        conn.close()
    return out


def collect_status(settings: Settings) -> dict[str, Any]:
    engine = make_engine(settings.database_url)
    with engine.connect() as conn:
        outbox_backlog = backlog(conn)
        by_state: dict[str, int] = dict(
            conn.execute(
                sa.select(letters.c.state, sa.func.count()).group_by(letters.c.state)
            ).all()
        )
    return {"queues": queue_depths(settings), "outbox_backlog": outbox_backlog, "letters": by_state}


def render_status(report: dict[str, Any]) -> str:
    lines = ["Queues                               messages  consumers"]
    queues = report["queues"]
    if "error" in queues:
        lines.append(f"  {queues['error']}")
    else:
        for name, q in queues.items():
            if q.get("missing"):
                lines.append(f"  {name:<34} (not declared yet)")
            else:
                flag = "  ← dead letters" if name.endswith(".dlq") and q["messages"] else ""
                lines.append(f"  {name:<34} {q['messages']:>8}  {q['consumers']:>9}{flag}")
    lines.append(f"Outbox backlog: {report['outbox_backlog']}")
    states = ", ".join(f"{k} {v}" for k, v in sorted(report["letters"].items())) or "none yet"
    lines.append(f"Letters: {states}")
    return "\n".join(lines)
