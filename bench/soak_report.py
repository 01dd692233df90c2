"""The soak's comparison and report: the supporters' ledger against what the SMTP sink took.

- **Confirmations**: each accepted signature must have had exactly one confirmation email.
- **Letters**: each signature the supporter confirmed (the confirm POST answered 303) must have
  exactly one letter envelope, meant for its target (the demo MP of its postcode, or the fixed
  target), unless the mailer recorded it ``failed``; the copy to the supporter likewise. A
  letter doubled is explained by the mailer's own count of SMTP hand-overs (``letters.sends``,
  ``uncertain``), printed for each.
- **Updates**: for each published update, each subscriber the fan-out job covers (subscribed, id
  up to the job's ``upto``) must have exactly one copy; a doubled copy is shown with its
  delivery's ``sends`` and the job's ``possible_duplicates``. And each confirmed supporter who
  opted in must be a subscriber.
- Dead letters, and whether the system drained, count too.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from bench.sink import Envelope
from bench.stack import Stack
from bench.supporters import Ledger


def _examples(items: list[str], n: int = 5) -> list[str]:
    return sorted(items)[:n]


def around(at: float, faults: list[dict[str, Any]]) -> list[str]:
    """The faults under way when something happened ``at`` seconds after signing began."""
    out = []
    for f in faults:
        began = f["evidence"].get("killed_at", f["at"]) - (2.0 if f["kind"] == "kill" else 0.5)
        if f["kind"] != "publish" and began <= at <= f["ended"] + 1.0:
            out.append(f["label"])
    return out


def when_taken(
    times: dict[str, list[float]], message_id: str, faults: list[dict[str, Any]]
) -> dict[str, Any]:
    """When the sink took each copy of a message, and the faults under way at the first."""
    taken = sorted(times.get(message_id, []))
    return {"taken_at": taken, "faults_then": around(taken[0], faults) if taken else []}


def compare(
    stack: Stack,
    ledger: Ledger,
    envelopes: list[Envelope],
    published: list[tuple[str, int]],
    t0: float = 0.0,
    faults: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    faults = faults or []
    by_purpose: dict[str, Counter[str]] = defaultdict(Counter)
    targets: dict[str, set[str]] = defaultdict(set)
    updates: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
    times: dict[str, list[float]] = defaultdict(list)  # Message-ID -> when the sink took it
    for env in envelopes:
        times[env.message_id].append(round(env.at - t0, 2))
        if env.purpose == "update" and env.campaign and env.update is not None:
            updates[(env.campaign, env.update)][env.signature_id or "?"] += 1
        else:
            by_purpose[env.purpose][env.signature_id or "?"] += 1
            if env.purpose == "letter":
                targets[env.signature_id or "?"].add((env.intended or "").lower())

    accepted = ledger.accepted()
    by_sig = ledger.by_signature()
    attempts = ledger.attempts

    # Confirmations: by the supporter's address (the signature id is only learnt from them).
    confirmation_for: Counter[str] = Counter()
    for env in envelopes:
        if env.purpose == "confirmation":
            confirmation_for[(env.intended or "").lower()] += 1
    conf_lost = [a.email for a in accepted if confirmation_for[a.email] == 0]
    conf_lost_detail = (
        [
            {
                "email": r.recipient,
                "signature_id": str(r.signature_id),
                "state": r.state,
                "sends": r.sends,
                "created_at": str(r.created_at),
                "lease_until": str(r.lease_until),
            }
            for r in stack.rows(
                "SELECT recipient, signature_id, state, sends, created_at, lease_until FROM letters "
                "WHERE purpose = 'confirmation' AND lower(recipient) = ANY(:emails)",
                emails=conf_lost[:50],
            )
        ]
        if conf_lost
        else []
    )
    conf_doubled = [s for s, n in by_purpose["confirmation"].items() if n > 1]
    conf_doubled_detail = [
        {"signature_id": s, **when_taken(times, f"<confirmation.{s}@dearmp.invalid>", faults)}
        for s in conf_doubled
    ]
    stored_unanswered = [
        a for a in attempts.values() if a.outcome != "accepted" and confirmation_for[a.email]
    ]

    # Letters and copies, for every signature the supporter saw confirmed.
    confirmed = [a for a in ledger.confirmed() if a.signature_id]
    letter_rows = stack.letters("letter")
    copy_rows = stack.letters("copy")

    def when(message_id: str) -> dict[str, Any]:
        return when_taken(times, message_id, faults)

    def check(purpose: str, rows: dict[str, Any]) -> dict[str, Any]:
        got = by_purpose[purpose]
        lost, failed, doubled = [], [], []
        for a in confirmed:
            sig = str(a.signature_id)
            n = got[sig]
            row = rows.get(sig)
            if n == 0:
                (failed if row is not None and row.state == "failed" else lost).append(sig)
            elif n > 1:
                doubled.append(
                    {
                        "signature_id": sig,
                        "envelopes": n,
                        "sends": row.sends if row else None,
                        "uncertain": row.uncertain if row else None,
                        "state": row.state if row else None,
                        "error": row.error if row else None,
                        **when(f"<{purpose}.{sig}@dearmp.invalid>"),
                    }
                )
        lost_detail = [
            {
                "signature_id": sig,
                "state": rows[sig].state if sig in rows else None,
                "sends": rows[sig].sends if sig in rows else None,
            }
            for sig in lost[:50]
        ]
        extra = [s for s in got if s not in by_sig or by_sig[s].confirm != "confirmed"]
        return {
            "expected": len(confirmed),
            "at_sink": sum(got.values()),
            "unique": len(got),
            "lost": len(lost),
            "lost_examples": _examples(lost),
            "lost_detail": lost_detail,
            "failed": len(failed),
            "doubled": len(doubled),
            "doubled_detail": doubled,
            "for_signatures_not_seen_confirmed": len(extra),
            "db_sends_above_1": sum(1 for r in rows.values() if r.sends > 1),
        }

    letters = check("letter", letter_rows)
    copies = check("copy", copy_rows)
    misdirected = [
        a.signature_id
        for a in confirmed
        if by_purpose["letter"][str(a.signature_id)]
        and targets[str(a.signature_id)] != {a.target.lower()}
    ]
    letters["misdirected"] = len(misdirected)
    letters["misdirected_examples"] = _examples([str(m) for m in misdirected])

    # Updates: the fan-out's own list of recipients, and the subscribers the ledger implies.
    update_reports = []
    jobs = {(j.campaign, j.update_number): j for j in stack.fanout_jobs()}
    for campaign, number in published:
        job = jobs.get((campaign, number))
        expected: dict[str, Any] = {}
        if job is not None:
            for r in stack.rows(
                "SELECT s.signature_id, d.state, d.sends FROM subscribers s "
                "LEFT JOIN update_deliveries d ON d.subscriber_id = s.id AND d.job_id = :job "
                "WHERE s.campaign = :c AND s.id <= :upto AND s.subscribed",
                job=job.id,
                c=campaign,
                upto=job.upto,
            ):
                expected[str(r.signature_id)] = r
        got = updates[(campaign, number)]
        lost = [s for s, r in expected.items() if got[s] == 0 and r.state != "failed"]
        doubled = [
            {
                "signature_id": s,
                "envelopes": got[s],
                "delivery_sends": expected[s].sends if s in expected else None,
                **when(f"<update.{campaign}.{number}.{s}@dearmp.invalid>"),
            }
            for s, n in got.items()
            if n > 1
        ]
        update_reports.append(
            {
                "campaign": campaign,
                "number": number,
                "job": None
                if job is None
                else {
                    "status": job.status,
                    "total": job.total,
                    "sent": job.sent,
                    "skipped": job.skipped,
                    "failed": job.failed,
                    "possible_duplicates": job.possible_duplicates,
                },
                "subscribers": len(expected),
                "at_sink": sum(got.values()),
                "lost": len(lost),
                "lost_examples": _examples(lost),
                "doubled": len(doubled),
                "doubled_detail": doubled,
                "unexpected": len([s for s in got if s not in expected]),
            }
        )

    subscribers = {str(r.signature_id) for r in stack.rows("SELECT signature_id FROM subscribers")}
    opted = {str(a.signature_id) for a in confirmed if a.opt_in}
    subs_missing = sorted(opted - subscribers)
    subs_unexpected = sorted(
        s for s in subscribers if s not in opted and (s not in by_sig or not by_sig[s].opt_in)
    )

    queues = {}
    try:
        queues = stack.queues()
    except Exception as exc:
        queues = {"error": (0, 0)}
        print(f"could not read the queues: {exc}")
    dead = {k: r + u for k, (r, u) in queues.items() if k.endswith(".dlq") and r + u}

    return {
        "signatures": {
            "attempts": len(attempts),
            "accepted": len(accepted),
            "outcomes": dict(ledger.outcomes()),
            "refused_by_status": dict(
                Counter(
                    str(a.status or "no answer")
                    for a in attempts.values()
                    if a.outcome == "refused"
                )
            ),
            "unanswered_but_stored": len(stored_unanswered),
            "confirmed": len(confirmed),
            "confirm_not_done": dict(
                Counter(a.confirm or "no email" for a in accepted if a.confirm != "confirmed")
            ),
        },
        "confirmations": {
            "expected": len(accepted),
            "at_sink": sum(by_purpose["confirmation"].values()),
            "lost": len(conf_lost),
            "lost_examples": _examples(conf_lost),
            "lost_detail": conf_lost_detail,
            "doubled": len(conf_doubled),
            "doubled_detail": conf_doubled_detail,
            "unknown": ledger.unknown_confirmations,
        },
        "letters": letters,
        "copies": copies,
        "updates": update_reports,
        "subscribers": {
            "opted_in_confirmed": len(opted),
            "in_updates_service": len(subscribers),
            "missing": len(subs_missing),
            "missing_examples": _examples(subs_missing),
            "unexpected": len(subs_unexpected),
        },
        "other_emails": {
            p: sum(c.values())
            for p, c in by_purpose.items()
            if p not in ("confirmation", "letter", "copy")
        },
        "dead_letters": dead,
    }


def problems(result: dict[str, Any]) -> list[str]:
    """Every way the run fell short: lost or doubled anything, or did not drain."""
    out = []
    c, letters, copies = result["confirmations"], result["letters"], result["copies"]
    for what, n in (
        ("confirmations lost", c["lost"]),
        ("confirmations doubled", c["doubled"]),
        ("letters lost", letters["lost"]),
        ("letters doubled", letters["doubled"]),
        ("letters to the wrong target", letters["misdirected"]),
        ("copies lost", copies["lost"]),
        ("copies doubled", copies["doubled"]),
        ("subscribers missing", result["subscribers"]["missing"]),
        ("dead letters", sum(result["dead_letters"].values())),
    ):
        if n:
            out.append(f"{n} {what}")
    for u in result["updates"]:
        for key in ("lost", "doubled", "unexpected"):
            if u[key]:
                out.append(f"{u[key]} update emails {key} ({u['campaign']} #{u['number']})")
        if u["job"] is None or u["job"]["status"] != "done":
            out.append(f"the fan-out of {u['campaign']} #{u['number']} did not finish")
    if not result["timing"]["drained"]:
        out.append(
            "the system did not drain"
            + (": nothing was left to come" if result["timing"].get("stuck") else " in time")
        )
    if result["signatures"]["accepted"] < result["run"]["signatures_asked"]:
        out.append("fewer signatures were accepted than asked for")
    return out


def render(result: dict[str, Any]) -> str:
    s, c = result["signatures"], result["confirmations"]
    letters, copies, t = result["letters"], result["copies"], result["timing"]
    run = result["run"]
    lines = [
        "",
        f"Dear MP soak: {run['signatures_asked']:,} signatures asked, rate "
        f"{run['rate'] or 'as fast as possible'}/s, {'short' if run['short'] else 'full'} "
        f"fault script, {run['replicas']}",
        f"logs and ledgers: {run['run_dir']}",
        "",
        "Faults (seconds after signing began):",
    ]
    for f in result["faults"]:
        flight = {True: "in flight", False: "NOT in flight", None: "-"}[f["in_flight"]]
        lines.append(
            f"  {f['at']:7.1f} – {f['ended']:7.1f}  {f['label']:<44} {flight:<14}{f['detail']}"
        )
    for e in result["fault_errors"]:
        lines.append(f"  ! {e}")
    lines += [
        "",
        f"Signatures: {s['accepted']:,} accepted of {s['attempts']:,} attempts "
        f"{s['outcomes']}; refused by status {s['refused_by_status']}; "
        f"unanswered but stored {s['unanswered_but_stored']}",
        f"  confirmed by their supporters: {s['confirmed']:,}"
        + (f"; not confirmed: {s['confirm_not_done']}" if s["confirm_not_done"] else ""),
        f"Confirmation emails: {c['at_sink']:,} at the sink for {c['expected']:,} accepted; "
        f"lost {c['lost']}, doubled {c['doubled']}",
        f"Letters: {letters['at_sink']:,} at the sink for {letters['expected']:,} confirmed; "
        f"lost {letters['lost']}, doubled {letters['doubled']}, failed {letters['failed']}, "
        f"to the wrong target {letters['misdirected']}; letters.sends > 1 in the database: "
        f"{letters['db_sends_above_1']}",
    ]
    for d in c["lost_detail"]:
        lines.append(
            f"    lost confirmation {d['signature_id']}: letters row {d['state']}, "
            f"sends={d['sends']}, claimed {d['created_at']}, lease until {d['lease_until']}"
        )
    for d in c["doubled_detail"]:
        lines.append(
            f"    doubled confirmation {d['signature_id']}: envelopes at {d['taken_at']}s; "
            f"the first taken during: {d['faults_then'] or 'no fault'}"
        )
    for d in letters["doubled_detail"]:
        lines.append(
            f"    doubled letter {d['signature_id']}: {d['envelopes']} envelopes at "
            f"{d['taken_at']}s; letters.sends={d['sends']} uncertain={d['uncertain']} "
            f"state={d['state']}; the first taken during: {d['faults_then'] or 'no fault'}"
        )
    lines.append(
        f"Copies to supporters: {copies['at_sink']:,}; lost {copies['lost']}, "
        f"doubled {copies['doubled']}; sends > 1: {copies['db_sends_above_1']}"
    )
    for d in copies["doubled_detail"]:
        lines.append(
            f"    doubled copy {d['signature_id']}: {d['envelopes']} envelopes at "
            f"{d['taken_at']}s; letters.sends={d['sends']} uncertain={d['uncertain']}; "
            f"the first taken during: {d['faults_then'] or 'no fault'}"
        )
    for u in result["updates"]:
        job = u["job"] or {}
        lines.append(
            f"Update #{u['number']} of {u['campaign']}: {u['at_sink']:,} at the sink for "
            f"{u['subscribers']:,} subscribers; lost {u['lost']}, doubled {u['doubled']},"
            f" unexpected {u['unexpected']}; job {job.get('status')}, possible "
            f"duplicates {job.get('possible_duplicates')}"
        )
        for d in u["doubled_detail"]:
            lines.append(
                f"    doubled update copy {d['signature_id']}: {d['envelopes']} envelopes "
                f"at {d['taken_at']}s; delivery sends={d['delivery_sends']}; the first "
                f"taken during: {d['faults_then'] or 'no fault'}"
            )
    sub = result["subscribers"]
    lines += [
        f"Subscribers: {sub['in_updates_service']:,} in the updates service for "
        f"{sub['opted_in_confirmed']:,} confirmed opt-ins; missing {sub['missing']}",
        f"Other emails: {result['other_emails'] or 'none'}; dead letters: "
        f"{result['dead_letters'] or 'none'}",
        "",
        f"Signing: {t['signing_seconds']:.0f}s, {t['signatures_per_s']:.1f} signatures/s. "
        f"Letters: {t['letters_per_s_while_flowing']:.1f}/s first to last letter, "
        f"{t['letters_per_s_whole_run']:.1f}/s over the whole run.",
        f"Drained: {'yes' if t['drained'] else 'NO'} at {t['drained_at']:.0f}s, "
        f"{t['drain_after_last_fault']:.0f}s after the last fault ended "
        f"({t['last_fault_end']:.0f}s); whole run {t['run_seconds']:.0f}s "
        f"(start-up {t['startup_seconds']:.0f}s).",
        "",
    ]
    bad = result["problems"]
    lines.append("RESULT: " + ("OK, nothing lost or doubled" if not bad else "; ".join(bad)))
    return "\n".join(lines)
