"""What each way of keeping supporters' data out of queues costs, per event (issue 15).

Run with ``.venv/bin/python bench/event_privacy.py`` (part of ``make bench``). Talks only to the
local PostgreSQL on 127.0.0.1 (a temporary table, gone with the session). Every figure is the
median of ROUNDS rounds, beside a raw baseline measured in the same run:

  raw json           json.dumps + json.loads of the same payload (the floor for any event);
  (a) self-contained today's events: Envelope.wrap(SignatureConfirmed with the supporter) →
                     to_json, then from_json → event() on the consumer side;
  (b) crypto-shred   the same, with the supporter's fields encrypted by AES-GCM under a
                     per-supporter key (cryptography), decrypted by the consumer; the key's
                     look-up (a table every service reads) is not included: see (c);
  (c) by reference   the event carries the signature id only; the consumer reads the personal
                     fields from PostgreSQL by primary key (one round trip, prepared).

Environment (optional): BENCH_N (events per round, default 20000), BENCH_READS (database reads per
round, default 5000), BENCH_ROUNDS (default 3).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from shared.messages import Envelope, SignatureConfirmed, Supporter  # noqa: E402

N = int(os.environ.get("BENCH_N", "20000"))
READS = int(os.environ.get("BENCH_READS", "5000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def supporter(i: int) -> Supporter:
    return Supporter(
        first_name="Siân",
        last_name=f"Ó Briain-{i}",
        email=f"supporter-{i}@example.org",
        postcode="GU11 1AA",
        address_lines=["12 Acacia Avenue", "Aldershot"],
        comment="My niece was one of these children. " * 3,
        opt_in=True,
        signed_at=datetime.now(UTC),
    )


def timed(work: Callable[[], int]) -> float:
    """Microseconds per item for one round of ``work`` (which returns how many it did)."""
    start = time.perf_counter()
    count = work()
    return (time.perf_counter() - start) / count * 1e6


def main() -> int:
    people = [supporter(i) for i in range(N)]
    ids = [uuid.uuid4() for _ in range(N)]
    keys = {p.email: AESGCM.generate_key(bit_length=128) for p in people}
    print(
        f"Event privacy benchmark {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({os.cpu_count()} cores, Python {platform.python_version()}); N={N}, reads={READS}, "
        f"{ROUNDS} rounds"
    )

    def raw_json() -> int:
        for p in people:
            json.loads(json.dumps(p.model_dump(mode="json")))
        return N

    def self_contained() -> int:
        for sid, p in zip(ids, people, strict=True):
            body = Envelope.wrap(
                SignatureConfirmed(signature_id=sid, campaign="c", supporter=p), correlation_id=sid
            ).to_json()
            Envelope.from_json(body).event()
        return N

    def crypto_shredded() -> int:
        for sid, p in zip(ids, people, strict=True):
            key = AESGCM(keys[p.email])
            nonce = os.urandom(12)
            sealed = key.encrypt(nonce, p.model_dump_json().encode(), sid.bytes)
            body = json.dumps(
                {"signature_id": str(sid), "nonce": nonce.hex(), "sealed": sealed.hex()}
            ).encode()
            got = json.loads(body)
            plain = AESGCM(keys[p.email]).decrypt(
                bytes.fromhex(got["nonce"]), bytes.fromhex(got["sealed"]), sid.bytes
            )
            Supporter.model_validate_json(plain)
        return N

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(
            "CREATE TEMP TABLE bench_signatures (id uuid PRIMARY KEY, first_name text, "
            "last_name text, email text, postcode text, address_lines jsonb, comment text)"
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO bench_signatures VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        sid,
                        p.first_name,
                        p.last_name,
                        p.email,
                        p.postcode,
                        json.dumps(p.address_lines),
                        p.comment,
                    )
                    for sid, p in zip(ids, people, strict=True)
                ],
            )
        conn.execute("ANALYZE bench_signatures")

        def by_reference() -> int:
            with conn.cursor() as cur:
                for sid in ids[:READS]:
                    body = json.dumps({"signature_id": str(sid)}).encode()
                    wanted = uuid.UUID(json.loads(body)["signature_id"])
                    cur.execute(
                        "SELECT first_name, last_name, email, postcode, address_lines, comment "
                        "FROM bench_signatures WHERE id = %s",
                        (wanted,),
                        prepare=True,
                    )
                    cur.fetchone()
            return READS

        modes: dict[str, Callable[[], int]] = {
            "raw json (baseline)": raw_json,
            "(a) self-contained (today)": self_contained,
            "(b) crypto-shredded": crypto_shredded,
            "(c) by reference (1 DB read)": by_reference,
        }
        results: dict[str, list[float]] = {name: [] for name in modes}
        for round_no in range(1, ROUNDS + 1):
            print(f"round {round_no}/{ROUNDS}", flush=True)
            for name, work in modes.items():  # interleaved: a noisy moment hits every mode
                results[name].append(timed(work))
    base = statistics.median(results["raw json (baseline)"])
    today = statistics.median(results["(a) self-contained (today)"])
    print()
    print("| mode | µs per event (median) | spread | × raw json | × today |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, runs in results.items():
        mid = statistics.median(runs)
        print(
            f"| {name} | {mid:,.1f} | {min(runs):,.1f}–{max(runs):,.1f} | {mid / base:.2f} "
            f"| {mid / today:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
