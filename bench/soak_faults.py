"""The soak's fault script: a timeline of faults run on a thread of its own against a ``Stack``.

Each step runs at its time (seconds after signing began; a step that waits makes the later ones
late, never early) and prints one timestamped line. Before every fault a snapshot says whether
work was in flight: messages ready or unacknowledged in the service's queue, outbox rows not
yet published, emails the sink took in the last 3 s or is holding unanswered, requests intake
had not answered, letters being sent, fan-outs running. A kill waits (bounded) for its service
to have work in hand, then fires anyway, and the record says which.

Kills are SIGKILL, and a replacement starts at once in the same slot, as a supervisor would.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.stack import Stack
from bench.supporters import FIXED_CAMPAIGN, MP_CAMPAIGN, SignatureDriver

UPDATE_BODY = (
    "Thank you to everyone who has written to their MP. This week we handed the first letters "
    "to the minister's officials, and they promised a **written answer**.\n\n"
    "- Ask a friend to sign: every letter counts\n"
)


@dataclass
class Fault:
    label: str  # "kill mailer#0", "restart RabbitMQ", …
    kind: str  # broker-restart, broker-close, kill, postgres-restart, smtp-stop, smtp-slow, publish
    at: float  # seconds after signing began
    ended: float = 0.0
    in_flight: bool | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    detail: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Step:
    at: float
    label: str
    run: Callable[[], None]


@dataclass(frozen=True)
class Durations:
    broker_down: float  # seconds between stop_app and start_app
    smtp_stopped: float
    slow_answer: float  # seconds the sink takes to answer each message …
    slow_for: float  # … for this long
    wait_for_work: float  # how long a kill waits for its service to have work in hand


FULL = Durations(broker_down=5, smtp_stopped=30, slow_answer=60, slow_for=120, wait_for_work=30)
SHORT = Durations(broker_down=3, smtp_stopped=10, slow_answer=15, slow_for=30, wait_for_work=15)


class FaultScript:
    def __init__(
        self,
        stack: Stack,
        driver: SignatureDriver,
        *,
        short: bool,
        signing: float,
        run_dir: Path,
        out: Any = sys.stderr,
    ) -> None:
        self.stack, self.driver, self.short = stack, driver, short
        self.run_dir, self.out = run_dir, out
        self.durations = SHORT if short else FULL
        self.faults: list[Fault] = []
        self.published: list[tuple[str, int]] = []  # (campaign, update number)
        self.errors: list[str] = []
        self.t0 = 0.0
        self.steps = self._short() if short else self._full(signing)
        self._thread = threading.Thread(target=self._run, name="fault-script", daemon=True)
        self._timers: list[threading.Timer] = []
        self._restarts = 0
        self.stopping = threading.Event()

    # -- the scripts ------------------------------------------------------------------------------
    def _short(self) -> list[Step]:
        """One fault of each kind, in about a minute of signing."""
        return [
            Step(4, "close every broker connection", self.close_connections),
            Step(8, "kill resolver", lambda: self.kill("resolver", 0)),
            Step(12, "restart RabbitMQ", self.restart_broker),
            # PostgreSQL restarts while emails are going out: one taken by the server just
            # before is recorded once the database is back, not sent again (bug B, fixed).
            Step(18, "restart PostgreSQL", self.restart_postgres),
            Step(22, "kill relay", lambda: self.kill("relay", 0)),
            Step(25, "kill intake", lambda: self.kill("intake", 0)),
            Step(30, "stop the SMTP server", self.stop_smtp),
            Step(45, "slow SMTP", self.slow_smtp),
            Step(46, "publish an update", self.publish),
            Step(48, "kill mailer", lambda: self.kill("mailer", 0)),
            Step(52, "kill updates", lambda: self.kill("updates", 0)),
        ]

    def _full(self, signing: float) -> list[Step]:
        """Two broker restarts, one close of every connection, each worker kind killed twice and
        a relay once, PostgreSQL restarted, the SMTP server stopped for 30 s and answering each
        message after 60 s for two minutes, and two updates published, spread over signing."""
        at = lambda share: round(share * signing, 1)  # noqa: E731
        slow = at(0.57)
        return sorted(
            [
                Step(at(0.05), "close every broker connection", self.close_connections),
                Step(at(0.09), "kill resolver", lambda: self.kill("resolver", 0)),
                Step(at(0.13), "kill mailer", lambda: self.kill("mailer", 0)),
                Step(at(0.17), "restart RabbitMQ", self.restart_broker),
                Step(at(0.24), "kill intake", lambda: self.kill("intake", 0)),
                Step(at(0.27), "kill relay", lambda: self.kill("relay", 0)),
                Step(at(0.31), "restart PostgreSQL", self.restart_postgres),
                Step(at(0.36), "stop the SMTP server", self.stop_smtp),
                Step(at(0.48), "publish an update", self.publish),
                Step(at(0.48) + 0.5, "kill updates", lambda: self.kill("updates", 0)),
                Step(at(0.54), "kill resolver", lambda: self.kill("resolver", 1)),
                Step(slow, "slow SMTP", self.slow_smtp),
                Step(slow + 10, "publish an update", self.publish),
                Step(slow + 15, "kill updates", lambda: self.kill("updates", 0)),
                Step(slow + 30, "kill mailer", lambda: self.kill("mailer", 1)),
                Step(at(0.80), "restart RabbitMQ", self.restart_broker),
                Step(at(0.86), "kill intake", lambda: self.kill("intake", 0)),
            ],
            key=lambda s: s.at,
        )

    # -- running ----------------------------------------------------------------------------------
    def start(self, t0: float) -> FaultScript:
        self.t0 = t0
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def done(self) -> bool:
        return not self._thread.is_alive() and not any(t.is_alive() for t in self._timers)

    def _after(self, seconds: float, action: Callable[[], None], label: str) -> None:
        """Run ``action`` ``seconds`` from now (the end of an outage), beside the script."""

        def run() -> None:
            if self.stopping.is_set():
                return
            try:
                action()
            except Exception as exc:
                self.errors.append(f"{label}: {type(exc).__name__}: {exc}")
                self.say(f"FAILED {label}: {type(exc).__name__}: {exc}")

        timer = threading.Timer(seconds, run)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def now(self) -> float:
        return time.time() - self.t0

    def say(self, text: str) -> None:
        print(f"[{self.now():7.1f}s] {text}", file=self.out, flush=True)

    def _run(self) -> None:
        for step in self.steps:
            wait = self.t0 + step.at - time.time()
            if wait > 0 and self.stopping.wait(wait):
                return
            try:
                step.run()
            except Exception as exc:  # the script goes on; the report lists what failed
                self.errors.append(f"{step.label}: {type(exc).__name__}: {exc}")
                self.say(f"FAILED {step.label}: {type(exc).__name__}: {exc}")

    @property
    def last_fault_end(self) -> float:
        return max((f.ended for f in self.faults if f.kind != "publish"), default=0.0)

    # -- what is in flight ------------------------------------------------------------------------
    def snapshot(self, *, broker: bool = True, database: bool = True) -> dict[str, Any]:
        ledger = self.stack.sink.ledger
        snap: dict[str, Any] = {
            "sink_took_last_3s": ledger.recent(3),
            "sink_holding": sum(ledger.answering.values()),
            "http_in_flight": self.driver.in_flight,
        }
        if database:
            try:
                # Only the resolver records every event it handles in its inbox.
                snap["resolver_events_pending"] = self.stack.events_in_queues().get("resolver", 0)
                snap["outbox_backlog"] = self.stack.outbox_backlog()
                snap["letters_sending"] = int(
                    self.stack.scalar("SELECT count(*) FROM letters WHERE state = 'sending'")
                )
                snap["fanouts_running"] = int(
                    self.stack.scalar("SELECT count(*) FROM fanout_jobs WHERE status <> 'done'")
                )
            except Exception as exc:
                snap["database"] = type(exc).__name__
        if broker:
            try:
                queues = self.stack.queues()
                for service in ("resolver", "mailer", "updates", "intake"):
                    main = queues.get(f"dearmp.{service}", (0, 0))
                    retrying = sum(
                        r
                        for name, (r, _u) in queues.items()
                        if name.startswith(f"dearmp.{service}.delay.")
                    )
                    snap[f"{service}_queue"] = {
                        "ready": main[0],
                        "unacked": main[1],
                        "retrying": retrying,
                    }
            except Exception as exc:
                snap["broker"] = type(exc).__name__
        return snap

    @staticmethod
    def _queue_work(snap: dict[str, Any], service: str) -> bool:
        """Messages in the service's queue (the broker's count); for the resolver also events
        published to it that it has not handled yet (sent from the outbox, not in its inbox)."""
        q = snap.get(f"{service}_queue") or {}
        pending = snap.get("resolver_events_pending", 0) if service == "resolver" else 0
        return bool(q.get("ready") or q.get("unacked") or pending)

    def any_work(self, snap: dict[str, Any]) -> bool:
        return bool(
            snap.get("sink_took_last_3s")
            or snap.get("sink_holding")
            or snap.get("http_in_flight")
            or snap.get("outbox_backlog")
            or snap.get("letters_sending")
            or any(self._queue_work(snap, s) for s in ("resolver", "mailer", "updates", "intake"))
        )

    def service_busy(self, name: str, snap: dict[str, Any], index: int = 0) -> bool:
        ledger = self.stack.sink.ledger
        if name in ("mailer", "updates") and self.stack.sink.ledger.delay:
            # The sink answers slowly: the process has work in hand when a message of its own
            # waits for the answer (its SMTP connections, found by port).
            proc = self.stack.procs[name][index]
            own = ledger.waiting_on(proc.ports_to(self.stack.sink.port))
            snap[f"sink_holding_{proc.label}"] = own
            return own > 0
        if name == "intake":
            return bool(snap.get("http_in_flight")) or self._queue_work(snap, "intake")
        if name == "relay":
            return bool(snap.get("outbox_backlog"))
        if name == "mailer":
            holding = ledger.waiting_from("letters@") + ledger.waiting_from("hello@")
            snap["sink_holding_mailer"] = holding
            return bool(holding or snap.get("letters_sending")) or self._queue_work(snap, "mailer")
        if name == "updates":
            holding = ledger.waiting_from("updates@")
            snap["sink_holding_updates"] = holding
            return bool(holding or snap.get("fanouts_running")) or self._queue_work(snap, "updates")
        return self._queue_work(snap, name)

    def _begin(self, label: str, kind: str) -> Fault:
        fault = Fault(label=label, kind=kind, at=round(self.now(), 2))
        self.faults.append(fault)
        return fault

    def _end(self, fault: Fault, detail: str = "") -> None:
        fault.ended = round(self.now(), 2)
        fault.detail = detail
        flight = {True: "work in flight", False: "NO work in flight", None: ""}[fault.in_flight]
        shown = {k: v for k, v in fault.evidence.items() if v not in (0, None, {}, "")}
        self.say(f"{fault.label}: {detail}{'; ' if detail and flight else ''}{flight} {shown}")

    # -- the faults -------------------------------------------------------------------------------
    def close_connections(self) -> None:
        fault = self._begin("close every broker connection", "broker-close")
        fault.evidence = self.snapshot()
        fault.in_flight = self.any_work(fault.evidence)
        self.stack.broker.close_all_connections()
        self._end(fault, "rabbitmqctl close_all_connections")

    def restart_broker(self) -> None:
        """The node the restarts have reached (one node, or the next of a cluster's)."""
        nodes = self.stack.broker.nodes
        node = self._restarts % len(nodes)
        self._restarts += 1
        label = "restart RabbitMQ" + (f" node {nodes[node].name}" if len(nodes) > 1 else "")
        fault = self._begin(label, "broker-restart")
        fault.evidence = self.snapshot()
        fault.in_flight = self.any_work(fault.evidence)
        started = time.monotonic()
        self.stack.broker.restart_app(self.durations.broker_down, node)
        self._end(
            fault,
            f"stop_app, {self.durations.broker_down:g}s down, start_app: "
            f"back in {time.monotonic() - started:.1f}s",
        )

    def restart_postgres(self) -> None:
        fault = self._begin("restart PostgreSQL", "postgres-restart")
        fault.evidence = self.snapshot()
        fault.in_flight = self.any_work(fault.evidence)
        started = time.monotonic()
        self.stack.pg.restart()
        self._end(fault, f"pg_ctl restart -m fast: {time.monotonic() - started:.1f}s")

    def kill(self, name: str, index: int) -> None:
        proc = self.stack.procs[name][index]
        fault = self._begin(f"kill {proc.label}", "kill")
        deadline = time.monotonic() + self.durations.wait_for_work
        while True:  # until the service has work in hand, for a while
            snap = self.snapshot(broker=time.monotonic() + 2 > deadline)
            busy = self.service_busy(name, snap, index)
            if busy or time.monotonic() > deadline or self.stopping.is_set():
                break
            time.sleep(0.3)
        if self.stopping.is_set():
            return
        fault.evidence, fault.in_flight = snap, busy
        pid = self.stack.kill(name, index)
        fault.evidence["pid"] = pid
        fault.evidence["killed_at"] = round(self.now(), 2)
        self.stack.replace(name, index)
        try:
            up = proc.wait_started(60)
            detail = f"SIGKILL pid {pid}; replacement pid {proc.pid} up in {up:.1f}s"
        except Exception as exc:
            detail = f"SIGKILL pid {pid}; replacement did not start: {exc}"
            self.errors.append(detail)
        self._end(fault, detail)

    def stop_smtp(self) -> None:
        fault = self._begin("stop the SMTP server", "smtp-stop")
        fault.evidence = self.snapshot(broker=False)
        fault.in_flight = self.any_work(fault.evidence)
        self.stack.sink.stop()
        self._smtp_stop = fault
        self._after(self.durations.smtp_stopped, self.start_smtp, "start the SMTP server")
        self.say(
            f"SMTP server stopped for {self.durations.smtp_stopped:g}s "
            f"({'work in flight' if fault.in_flight else 'NO work in flight'})"
        )

    def start_smtp(self) -> None:
        self.stack.sink.start()
        fault = getattr(self, "_smtp_stop", None)
        if fault is not None:
            self._end(fault, f"stopped {self.now() - fault.at:.1f}s, listening again")

    def slow_smtp(self) -> None:
        fault = self._begin("slow SMTP", "smtp-slow")
        fault.evidence = self.snapshot(broker=False)
        fault.in_flight = self.any_work(fault.evidence)
        self.stack.sink.answer_after(self.durations.slow_answer)
        self._slow = fault
        self._after(self.durations.slow_for, self.fast_smtp, "answer at once again")
        self.say(
            f"the SMTP server answers each message after {self.durations.slow_answer:g}s "
            f"for {self.durations.slow_for:g}s"
        )

    def fast_smtp(self) -> None:
        self.stack.sink.answer_after(0)
        fault = getattr(self, "_slow", None)
        if fault is not None:
            fault.evidence["abandoned_by_clients"] = self.stack.sink.ledger.abandoned
            self._end(
                fault,
                f"{self.durations.slow_answer:g}s per message for "
                f"{self.now() - fault.at:.0f}s; answering at once again",
            )

    def publish(self) -> None:
        """`dearmp updates publish SLUG --title T --body-file F --no-wait` for both campaigns."""
        body = self.run_dir / "update.md"
        body.write_text(UPDATE_BODY, encoding="utf-8")
        for campaign in (MP_CAMPAIGN, FIXED_CAMPAIGN):
            fault = self._begin(f"publish an update of {campaign}", "publish")
            subscribers = int(
                self.stack.scalar(
                    "SELECT count(*) FROM subscribers WHERE campaign = :c AND subscribed",
                    c=campaign,
                )
            )
            fault.evidence = {"subscribers": subscribers}
            fault.in_flight = subscribers > 0
            done = self.stack.dearmp(
                "updates",
                "publish",
                campaign,
                "--title",
                f"News at {self.now():.0f}s",
                "--body-file",
                str(body),
                "--no-wait",
            )
            if done.returncode != 0:
                raise RuntimeError(f"dearmp updates publish: {done.stderr.strip()}")
            number = int(done.stdout.split("#", 1)[1].split()[0])
            self.published.append((campaign, number))
            self._end(fault, f"update #{number} to {subscribers} subscribers")
