"""Soak test with a ledger (issue 16): the whole system under faults, every email accounted for.

Run with ``make soak`` (or ``.venv/bin/python bench/soak.py``); not part of ``make test``. The
short version, ``--signatures 1000 --short``, is what tests/integration/test_soak.py runs.

1. bench/stack.py starts the whole system as ``make run`` does, with 2 relays, 2 resolvers,
   2 mailers, 1 updates and 1 intake, on a private PostgreSQL and a private RabbitMQ (their own
   ports and directories: the shared servers on 5432/5672 are never touched) and a recording
   SMTP sink (bench/sink.py) in this process.
2. bench/supporters.py signs N times through the web form at ``--rate`` a second (unique
   addresses; demo postcodes spread over the demo MPs; a tenth on the fixed-target campaign; a
   share opting in to updates), and confirms each signature from its confirmation email as the
   supporter does (the page, then its button). Their ledger records what they were told.
3. Meanwhile bench/soak_faults.py runs the fault script (timeline printed as it goes): RabbitMQ
   restarted and every connection closed, each kind of process SIGKILLed and replaced,
   PostgreSQL restarted, the SMTP server stopped and then answering slowly, updates published.
4. It waits for the system to drain (no outbox backlog, every queue empty, no email being sent,
   every fan-out done, every confirmed signature's letter at the sink or failed), then
   bench/soak_report.py compares the ledger with the sink and prints the report (``--json``:
   JSON on stdout). Exit status 1 if anything was lost or doubled, or it did not drain.

Everything of the run (service logs, the supporters' ledger, every envelope, report.json) is
kept in var/soak/<time>/; the servers' data directories are removed.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.soak_faults import FaultScript  # noqa: E402
from bench.soak_report import compare, problems, render  # noqa: E402
from bench.stack import REPLICAS, Stack  # noqa: E402
from bench.supporters import Confirmer, Ledger, SignatureDriver  # noqa: E402

# Short runs: retries, sending leases and fan-out pauses in seconds rather than minutes, so the
# system recovers within the test's time. The full run keeps every default.
SHORT_ENV = {
    "DEARMP_RETRY_DELAYS_MS": "500,2000,5000",
    "DEARMP_SEND_LEASE_SECONDS": "10",
    "DEARMP_FANOUT_PAUSE_SECONDS": "2",
    "DEARMP_FANOUT_PAUSE_MAX_SECONDS": "8",
    "DEARMP_HEARTBEAT": "10",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--signatures", type=int, default=10_000, help="accepted signatures to drive")
    p.add_argument(
        "--rate",
        type=float,
        default=None,
        help="signatures a second (0: as fast as possible; default 30, 15 with --short)",
    )
    p.add_argument(
        "--short",
        action="store_true",
        help="one fault of each kind, shorter outages (SMTP stopped 10 s, 15 s answers "
        "for 30 s), short retry delays and leases",
    )
    p.add_argument("--cluster", type=int, default=1, help="RabbitMQ nodes (see docs/soak.md)")
    p.add_argument("--opt-in", type=float, default=0.3, help="share of supporters opting in")
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=None,
        help="seconds to wait for the system to drain (default 900, 180 with --short)",
    )
    p.add_argument(
        "--settle",
        type=float,
        default=None,
        help="seconds to wait after draining for late duplicates (default 20, 5 short)",
    )
    p.add_argument(
        "--stuck-after",
        type=float,
        default=None,
        help="stop waiting when nothing is left anywhere and no email came for this long "
        "(default 120 s, 45 s with --short)",
    )
    p.add_argument("--no-faults", action="store_true", help="the same run without the faults")
    p.add_argument("--json", action="store_true", help="the report as JSON on stdout")
    p.add_argument("--run-dir", type=Path, default=None, help="default var/soak/<time>")
    args = p.parse_args(argv)
    if args.rate is None:
        args.rate = 15.0 if args.short else 30.0
    if args.drain_timeout is None:
        args.drain_timeout = 180.0 if args.short else 900.0
    if args.stuck_after is None:
        args.stuck_after = 45.0 if args.short else 120.0
    if args.settle is None:
        args.settle = 5.0 if args.short else 20.0
    if args.cluster < 1:
        p.error("--cluster N: at least one RabbitMQ node")
    return args


class Drain:
    """Is everything done? Checked every few seconds once signing and the faults are over."""

    def __init__(
        self,
        stack: Stack,
        ledger: Ledger,
        driver: SignatureDriver,
        confirmer: Confirmer,
        script: FaultScript | None,
    ) -> None:
        self.stack, self.ledger, self.driver = stack, ledger, driver
        self.confirmer, self.script = confirmer, script
        self.waiting_for: list[str] = []
        self.stuck_because = ""

    def stuck(self, quiet: float) -> bool:
        """Nothing can come any more: signing, the faults and the supporters are done, the
        outbox is empty, no fan-out is running, no queue (main or retry) holds a message, and the
        sink has taken nothing for ``quiet`` seconds. What is still awaited is lost."""
        if not (self.driver.done() and (self.script is None or self.script.done)):
            return False
        envelopes = self.stack.sink.ledger.envelopes
        if not self.confirmer.idle() or (envelopes and time.time() - envelopes[-1].at < quiet):
            return False
        try:
            if self.stack.outbox_backlog() or int(
                self.stack.scalar("SELECT count(*) FROM fanout_jobs WHERE status <> 'done'")
            ):
                return False
            busy = {
                k: r + u
                for k, (r, u) in self.stack.queues().items()
                if not k.endswith(".dlq") and r + u
            }
        except Exception:
            return False
        if busy:
            return False
        self.stuck_because = (
            f"nothing in the outbox or any queue and no email for {quiet:.0f}s, while waiting "
            f"for: {', '.join(self.waiting_for)}"
        )
        return True

    def check(self) -> bool:
        why: list[str] = []
        if not self.driver.done():
            why.append("signing")
        if self.script is not None and not self.script.done:
            why.append("the fault script")
        if not self.confirmer.idle():
            why.append("supporters confirming")
        pending = awaited(self.ledger, self.stack.sink.ledger.snapshot())
        why += [f"{n} {what}" for what, n in pending.items() if n]
        try:
            if n := self.stack.outbox_backlog():
                why.append(f"{n} outbox rows")
            if n := self.stack.letters_unsettled():
                why.append(f"{n} emails being sent")
            if n := int(
                self.stack.scalar("SELECT count(*) FROM fanout_jobs WHERE status <> 'done'")
            ):
                why.append(f"{n} fan-outs")
        except Exception as exc:
            why.append(f"database: {type(exc).__name__}")
        if not why:  # the broker last: rabbitmqctl costs a second
            try:
                busy = {
                    k: r + u
                    for k, (r, u) in self.stack.queues().items()
                    if not k.endswith(".dlq") and r + u
                }
                if busy:
                    why.append(f"queues {busy}")
            except Exception as exc:
                why.append(f"broker: {type(exc).__name__}")
        self.waiting_for = why
        return not why


def awaited(ledger: Ledger, envelopes: list[Any]) -> dict[str, int]:
    """What the supporters are still waiting for: confirmations, letters and copies."""
    seen: dict[str, set[str]] = {"confirmation": set(), "letter": set(), "copy": set()}
    for env in envelopes:
        if env.purpose in seen:
            seen[env.purpose].add(
                env.intended.lower()
                if env.purpose == "confirmation" and env.intended
                else str(env.signature_id)
            )
    with ledger.lock:
        attempts = list(ledger.attempts.values())
    return {
        "confirmations awaited": sum(
            1 for a in attempts if a.outcome == "accepted" and a.email not in seen["confirmation"]
        ),
        "letters awaited": sum(
            1 for a in attempts if a.confirm == "confirmed" and a.signature_id not in seen["letter"]
        ),
        "copies awaited": sum(
            1 for a in attempts if a.confirm == "confirmed" and a.signature_id not in seen["copy"]
        ),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = sys.stderr  # progress; the report goes to stdout
    run_dir = args.run_dir or ROOT / "var" / "soak" / time.strftime("%Y%m%d-%H%M%S")
    env = dict(SHORT_ENV) if args.short else {}
    stack = Stack(run_dir, replicas=dict(REPLICAS), cluster=args.cluster, env_overrides=env)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # runs the finally below
    t_start = time.time()
    driver: SignatureDriver | None = None
    script: FaultScript | None = None
    try:
        stack.start()
        t_up = time.time()
        replicas: dict[str, list[str]] = {}
        if args.cluster > 1:
            replicas = stack.broker.members()
            print(f"soak: quorum queues and their replicas: {replicas}", file=out, flush=True)
        ledger = Ledger()
        confirmer = Confirmer(ledger, patience=args.drain_timeout).start()
        stack.sink.on_envelope(confirmer.take)
        driver = SignatureDriver(
            stack.base_url, ledger, count=args.signatures, rate=args.rate, opt_in_share=args.opt_in
        )
        signing = args.signatures / (args.rate or 40.0)
        script = (
            None
            if args.no_faults
            else FaultScript(
                stack, driver, short=args.short, signing=signing, run_dir=run_dir, out=out
            )
        )
        print(
            f"soak: signing {args.signatures:,} at {args.rate or 'max'}/s (about {signing:.0f}s)",
            file=out,
            flush=True,
        )
        driver.start()
        t0 = driver.started_at
        if script is not None:
            script.start(t0)
        drain = Drain(stack, ledger, driver, confirmer, script)
        drained_at, ok_since, deadline = None, None, None
        last_said = 0.0
        while True:
            time.sleep(3)
            now = time.time()
            if driver.done() and (script is None or script.done) and deadline is None:
                deadline = now + args.drain_timeout
                print(
                    f"[{now - t0:7.1f}s] signing and faults over; waiting up to "
                    f"{args.drain_timeout:.0f}s for the system to drain",
                    file=out,
                    flush=True,
                )
            if drain.check():
                if ok_since is None:
                    ok_since = now
                else:  # twice in a row
                    drained_at = ok_since
                    break
            else:
                ok_since = None
                if deadline is not None and drain.stuck(args.stuck_after):
                    print(f"[{now - t0:7.1f}s] stuck: {drain.stuck_because}", file=out, flush=True)
                    break
            if now - last_said > 15:
                last_said = now
                print(
                    f"[{now - t0:7.1f}s] {driver.accepted:,} accepted, "
                    f"{len(stack.sink.ledger.envelopes):,} emails at the sink; waiting for: "
                    f"{', '.join(drain.waiting_for) or '-'}",
                    file=out,
                    flush=True,
                )
            if deadline is not None and now > deadline:
                print(
                    f"[{now - t0:7.1f}s] did not drain: {', '.join(drain.waiting_for)}",
                    file=out,
                    flush=True,
                )
                break
        if drained_at:
            print(
                f"[{time.time() - t0:7.1f}s] drained; {args.settle:g}s more for late duplicates",
                file=out,
                flush=True,
            )
        time.sleep(args.settle)
        confirmer.stop()
        envelopes = stack.sink.ledger.snapshot()
        published = script.published if script else []
        faults = [f.as_json() for f in script.faults] if script else []
        result = compare(stack, ledger, envelopes, published, t0, faults)
        result["run"] = {
            "signatures_asked": args.signatures,
            "rate": args.rate,
            "short": args.short,
            "faults": not args.no_faults,
            "cluster": args.cluster,
            "replicas": stack.describe(),
            "run_dir": str(run_dir),
            "env_overrides": env,
            "amqp_url": stack.broker.amqp_url,
            "quorum_replicas": replicas,
        }
        result["faults"] = faults
        result["fault_errors"] = script.errors if script else []
        result["timing"] = timing(t_start, t_up, t0, driver, envelopes, drained_at, script)
        result["timing"]["stuck"] = drain.stuck_because
        result["problems"] = problems(result)
        ledger.write(run_dir / "ledger.jsonl")
        with (run_dir / "envelopes.jsonl").open("w") as f:
            for e in envelopes:
                f.write(json.dumps(e.as_json()) + "\n")
        (run_dir / "report.json").write_text(json.dumps(result, indent=2, default=str))
        print(
            json.dumps(result, indent=2, default=str) if args.json else render(result), flush=True
        )
        if args.json:
            print(render(result), file=out, flush=True)
        return 1 if result["problems"] else 0
    finally:
        for running in (driver, script):
            if running is not None:
                running.stopping.set()  # nothing more may touch the servers
        stack.close()


def timing(
    t_start: float,
    t_up: float,
    t0: float,
    driver: SignatureDriver,
    envelopes: list[Any],
    drained_at: float | None,
    script: FaultScript | None,
) -> dict[str, Any]:
    letters = sorted(e.at for e in envelopes if e.purpose == "letter")
    end = drained_at or time.time()
    signing = (driver.finished_at or end) - t0
    flowing = (letters[-1] - letters[0]) if len(letters) > 1 else 0.0
    last_fault = script.last_fault_end if script else 0.0
    return {
        "t0": t0,  # when signing began (epoch seconds); the other times count from it
        "startup_seconds": round(t_up - t_start, 1),
        "signing_seconds": round(signing, 1),
        "signatures_per_s": round(driver.accepted / signing, 2) if signing > 0 else 0.0,
        "letters_per_s_while_flowing": round(len(letters) / flowing, 2) if flowing else 0.0,
        "letters_per_s_whole_run": round(len(letters) / (end - t0), 2) if end > t0 else 0.0,
        "drained": drained_at is not None,
        "drained_at": round(end - t0, 1),
        "last_fault_end": round(last_fault, 1),
        "drain_after_last_fault": round(end - t0 - last_fault, 1),
        "run_seconds": round(end - t_start, 1),
    }


if __name__ == "__main__":
    sys.exit(main())
