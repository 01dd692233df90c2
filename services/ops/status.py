"""``dearmp status``: what an operator checks first.

One line per service: messages waiting in its queue, consumers attached (none means the service
is not running), messages waiting out a retry delay, and dead letters (flagged, with the command
that lists them). Then the outbox backlog (events not yet published), every email by state, and
each campaign's signatures by status (the same counts as the staff dashboard: both read them
through ``services.intake.reports``; letters through ``services.mailer.reports``).
``--json`` gives the same figures, plus the raw depth of every queue, for scripts.
"""

from __future__ import annotations

from typing import Any

import pika
import pika.exceptions
from sqlalchemy.exc import InterfaceError, OperationalError

from services.intake.reports import signature_counts
from services.mailer.reports import (
    bounce_report,
    letters_by_state,
    maybe_duplicated,
    sending_paused,
)
from services.updates.reports import webhook_states
from shared.broker.declare import connection_parameters
from shared.config import Settings
from shared.db import make_engine
from shared.outbox import backlog
from shared.states import LetterState
from shared.topology import SERVICES, Topology


def _depth(conn: pika.BlockingConnection, name: str) -> dict[str, Any]:
    channel = conn.channel()
    try:
        ok = channel.queue_declare(name, passive=True).method
    except pika.exceptions.ChannelClosedByBroker:
        return {"messages": None, "consumers": None, "missing": True}
    channel.close()
    return {"messages": ok.message_count, "consumers": ok.consumer_count}


def queue_depths(settings: Settings) -> dict[str, Any]:
    """Every queue of every service: {name: {messages, consumers}} (``missing`` if undeclared)."""
    topology = Topology(settings.broker_namespace)
    out: dict[str, Any] = {}
    try:
        conn = pika.BlockingConnection(
            connection_parameters(settings.amqp_url, name="dearmp-status")
        )
    except (pika.exceptions.AMQPError, OSError):
        return {"error": "cannot reach RabbitMQ (DEARMP_AMQP_URL)"}
    try:
        for service in SERVICES:
            names = [topology.queue(service), topology.dead_letter_queue(service)]
            names += [topology.retry_queue(service, d) for d in settings.retry_delays]
            for name in names:
                out[name] = _depth(conn, name)
    finally:
        conn.close()
    return out


def service_summary(settings: Settings, queues: dict[str, Any]) -> dict[str, Any]:
    topology = Topology(settings.broker_namespace)
    out: dict[str, Any] = {}
    for service in SERVICES:
        main = queues.get(topology.queue(service), {})
        dead = queues.get(topology.dead_letter_queue(service), {})
        retry_names = [topology.retry_queue(service, d) for d in settings.retry_delays]
        out[service] = {
            "queue": topology.queue(service),
            "declared": not main.get("missing", False),
            "messages": main.get("messages"),
            "consumers": main.get("consumers"),
            "retrying": sum(queues.get(n, {}).get("messages") or 0 for n in retry_names),
            "dead_letters": dead.get("messages"),
        }
    return out


def collect_status(settings: Settings) -> dict[str, Any]:
    queues = queue_depths(settings)
    report: dict[str, Any] = {
        "namespace": settings.broker_namespace,
        "services": {} if "error" in queues else service_summary(settings, queues),
        "queues": queues,
    }
    report["dead_letters_total"] = sum(s["dead_letters"] or 0 for s in report["services"].values())
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            report["outbox_backlog"] = backlog(conn)
            report["letters"] = letters_by_state(conn)
            report["maybe_duplicated"] = maybe_duplicated(conn)
            report["sending_paused"] = sending_paused(conn)
            report["bounces"] = bounce_report(conn)
            report["webhooks"] = webhook_states(conn)
            report["campaigns"] = {
                slug: counts.as_json() for slug, counts in sorted(signature_counts(conn).items())
            }
    except (OperationalError, InterfaceError) as exc:
        reason = str(exc.orig).strip().splitlines()[0][:120] if exc.orig else "unreachable"
        report["database_error"] = f"cannot reach the database (DEARMP_DATABASE_URL): {reason}"
        report["outbox_backlog"] = None
        report["letters"] = {}
        report["campaigns"] = {}
        report["maybe_duplicated"] = None
        report["sending_paused"] = []
        report["webhooks"] = {}
    finally:
        engine.dispose()
    return report


def _paint(text: str, colour: str | None, color: bool) -> str:
    codes = {"red": "31;1", "yellow": "33", "green": "32"}
    return f"\x1b[{codes[colour]}m{text}\x1b[0m" if color and colour else text


def render_status(report: dict[str, Any], *, color: bool = False) -> str:
    lines = [f"Dear MP status (broker namespace {report.get('namespace', 'dearmp')})", ""]
    queues = report["queues"]
    if "error" in queues:
        lines.append(_paint(f"RabbitMQ: {queues['error']}", "red", color))
    else:
        lines.append(
            f"{'service':<10} {'waiting':>8} {'consumers':>10} {'retrying':>9} {'dead':>6}"
        )
        for service, s in report["services"].items():
            if not s["declared"]:
                lines.append(f"{service:<10} (queue not declared yet: has it ever started?)")
                continue
            consumers = f"{s['consumers']:>10}"
            if not s["consumers"]:
                consumers = _paint(f"{'none':>10}", "yellow", color)
            dead = s["dead_letters"] or 0
            dead_cell = _paint(f"{dead:>6}", "red" if dead else None, color)
            hint = f"  ! dead letters: dearmp dlq list {service}" if dead else ""
            lines.append(
                f"{service:<10} {s['messages']:>8} {consumers} {s['retrying']:>9} {dead_cell}"
                + _paint(hint, "red", color)
            )
        total = report.get("dead_letters_total", 0)
        lines.append(
            _paint(f"{total} dead letters in all", "red", color)
            if total
            else _paint("no dead letters", "green", color)
        )
    lines.append("")
    if report.get("database_error"):
        lines.append(_paint(report["database_error"], "red", color))
        return "\n".join(lines)
    backlog_n = report["outbox_backlog"]
    lines.append(
        f"Outbox backlog: {backlog_n} events waiting to be published"
        + (" (is the relay running?)" if backlog_n else "")
    )
    by_state = report["letters"]
    parts = [f"{s} {n}" for s, n in by_state.items()]
    text = " · ".join(parts) if any(by_state.values()) else "none yet"
    if by_state.get(LetterState.FAILED):
        text += "  (dearmp letters failed)"
    lines.append(f"Emails: {text}")
    if report.get("maybe_duplicated"):
        lines.append(
            _paint(
                f"{report['maybe_duplicated']} emails may be duplicated (handed to the server "
                "twice after a crash or a lost connection; same Message-ID)",
                "yellow",
                color,
            )
        )
    for pause in report.get("sending_paused", []):
        lines.append(
            _paint(
                f"Sending paused on {pause['owner']} since {pause['since'][:19]}: the mail server "
                f"refuses our set-up ({pause['reason']}); letters wait, none is failed for it",
                "red",
                color,
            )
        )
    hooks = report.get("webhooks") or {}
    if hooks:
        text = " · ".join(f"{s} {n}" for s, n in sorted(hooks.items()))
        failed = hooks.get("failed")
        lines.append(
            _paint(f"Webhooks: {text}", "yellow" if failed else None, color)
            + ("  (failure log: /admin/webhooks)" if failed else "")
        )
    lines += _bounce_lines(report.get("bounces"), color)
    for slug, counts in report.get("campaigns", {}).items():
        lines.append(
            f"Campaign {slug}: {counts['confirmed']} confirmed, {counts['pending']} waiting to "
            f"confirm; letters sent {counts['sent']}, failed {counts['failed']}"
        )
    return "\n".join(lines)


def _bounce_lines(bounces: dict[str, Any] | None, color: bool) -> list[str]:
    """Bounces kept, and what waits on them: letters held for an MP's address that bounced."""
    if not bounces or not (bounces["hard"] or bounces["soft"] or bounces["targets_flagged"]):
        return []
    lines = [
        f"Bounces: {bounces['hard']} hard, {bounces['soft']} soft; "
        f"{bounces['supporters_flagged']} supporters' addresses get no more mail"
    ]
    for target in bounces["targets_flagged"]:
        text = (
            f"MP address {target['address']} bounced ({target['reason'][:80]}): "
            f"{target['held']} letters held"
        )
        if target["refresh_needed"]:
            text += "; the MP data still lists it: run dearmp data refresh-mps"
        text += f"; once fixed: dearmp bounces clear {target['address']}"
        lines.append(_paint(text, "yellow", color))
    return lines
