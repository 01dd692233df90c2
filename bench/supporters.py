"""Supporters for a whole-system run: they sign through the web form and confirm from the email.

``SignatureDriver`` signs as a browser does: GET ``/c/{slug}`` (the CSRF cookie and token, and
the letter to edit on an editable campaign), then POST ``/c/{slug}/sign``. A 303 to the
check-email page is *accepted*. Any other answer, or none (the connection refused or cut), and
the slot is tried again by a new supporter a moment later, until ``count`` are accepted; an
attempt that got no answer may have been stored anyway: the ledger says so, and its
confirmation email, if one comes, is followed like any other. It paces itself at ``rate``
signatures a second (0: as fast as its threads go).

``Confirmer`` follows each confirmation email the sink takes, as the supporter does: GET the link
(the page with the letter and a button), POST the form. A 303 is *confirmed*. Errors are tried
again, as a person presses again, for up to ``patience`` seconds.

Every supporter has a unique address and a postcode from data/demo/onspd.csv that resolves to a
demo MP (or signs the fixed-target campaign), and ``opt_in_share`` of them ask for updates.
``Ledger`` holds what they were told; nothing here reads the database.
"""

from __future__ import annotations

import csv
import html
import json
import queue
import random
import re
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.sink import Envelope

ROOT = Path(__file__).resolve().parent.parent
MP_CAMPAIGN = "guardians-for-children"
FIXED_CAMPAIGN = "specialist-support-for-child-victims"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
LETTER_RE = re.compile(r'<textarea[^>]*name="letter"[^>]*>\n?(.*?)</textarea>', re.S)
FIRST_NAMES = ("Alex", "Sam", "Jo", "Priya", "Tom", "Aisha", "Megan", "Owen", "Chen", "Ruth")


def demo_targets() -> dict[str, tuple[str, str]]:
    """{postcode: (town, MP email)} for the demo postcodes that resolve to an MP with an email."""
    demo = ROOT / "data" / "demo"
    with (demo / "mps.csv").open(encoding="utf-8") as f:
        mps = {r["pcon_code"]: r for r in csv.DictReader(f)}
    out: dict[str, tuple[str, str]] = {}
    with (demo / "onspd.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            mp = mps.get(row["pcon"])
            if row["doterm"] or mp is None or "@" not in (mp.get("member_email") or ""):
                continue
            out[row["pcds"]] = (mp["pcon_name"], mp["member_email"])
    return out


def fixed_target() -> str:
    from shared.campaigns import read_campaign_file

    campaign = read_campaign_file(ROOT / "campaigns" / "home-secretary-support.yaml")
    return str(campaign.target.email)


def _letters(i: int) -> str:
    """A surname from a number (names may not hold digits or symbols)."""
    out = ""
    i += 26 * 26
    while i:
        i, r = divmod(i, 26)
        out = chr(ord("a") + r) + out
    return out.capitalize()


@dataclass
class Attempt:
    """One supporter's go at signing, and what became of it."""

    index: int
    email: str
    campaign: str
    postcode: str
    opt_in: bool
    target: str  # the address the letter must go to
    outcome: str = "pending"  # accepted | refused | unanswered
    status: int | None = None
    error: str | None = None
    sent_at: float = 0.0
    answered_at: float = 0.0
    signature_id: str | None = None  # learnt from the confirmation email
    confirm: str = ""  # "" | confirmed | failed | invalid | unanswered
    confirmed_at: float = 0.0
    confirm_tries: int = 0

    def form(self) -> dict[str, str]:
        data = {
            "first_name": FIRST_NAMES[self.index % len(FIRST_NAMES)],
            "last_name": "Soak" + _letters(self.index),
            "email": self.email,
            "address_line1": f"{self.index % 200 + 1} Long Road",
            "town": "Sevenoaks" if self.postcode.startswith("BR") else "Aldershot",
            "postcode": self.postcode,
            "comment": "Please help." if self.index % 5 == 0 else "",
            "consent": "yes",
        }
        if self.opt_in:
            data["opt_in"] = "yes"
        return data


@dataclass
class Ledger:
    """What the supporters saw: every attempt, by address, and the signatures they confirmed."""

    attempts: dict[str, Attempt] = field(default_factory=dict)
    confirmations_seen: Counter[str] = field(default_factory=Counter)  # by signature id
    unknown_confirmations: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accepted(self) -> list[Attempt]:
        return [a for a in self.attempts.values() if a.outcome == "accepted"]

    def confirmed(self) -> list[Attempt]:
        return [a for a in self.attempts.values() if a.confirm == "confirmed"]

    def by_signature(self) -> dict[str, Attempt]:
        return {a.signature_id: a for a in self.attempts.values() if a.signature_id}

    def outcomes(self) -> Counter[str]:
        return Counter(a.outcome for a in self.attempts.values())

    def write(self, path: Path) -> None:
        with path.open("w", encoding="utf-8") as f:
            for a in self.attempts.values():
                f.write(json.dumps(asdict(a)) + "\n")


class SignatureDriver:
    """Signs ``count`` times through the form, ``rate`` a second, on ``threads`` threads."""

    def __init__(
        self,
        base_url: str,
        ledger: Ledger,
        *,
        count: int,
        rate: float,
        opt_in_share: float = 0.3,
        fixed_share: float = 0.1,
        threads: int = 8,
        run_tag: str = "",
        seed: int = 16,
    ) -> None:
        self.base_url, self.ledger = base_url, ledger
        self.count, self.rate, self.threads = count, rate, threads
        self.opt_in_share, self.fixed_share = opt_in_share, fixed_share
        self.run_tag = run_tag or f"{int(time.time()) % 100000}"
        self.random = random.Random(seed)
        self.targets = demo_targets()
        self.postcodes = sorted(self.targets)
        self.fixed = fixed_target()
        self.in_flight = 0  # requests sent and not yet answered
        self.started_at = 0.0
        self.finished_at = 0.0
        self._next_slot = 0
        self._next_index = 0
        self._accepted = 0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.stopping = threading.Event()

    @property
    def accepted(self) -> int:
        return self._accepted

    def _new_attempt(self) -> Attempt:
        with self._lock:
            i = self._next_index
            self._next_index += 1
            fixed = self.random.random() < self.fixed_share
            opt_in = self.random.random() < self.opt_in_share
        postcode = self.postcodes[i % len(self.postcodes)]
        attempt = Attempt(
            index=i,
            email=f"soak.{self.run_tag}.{i:06d}@example.org",
            campaign=FIXED_CAMPAIGN if fixed else MP_CAMPAIGN,
            postcode=postcode,
            opt_in=opt_in,
            target=self.fixed if fixed else self.targets[postcode][1],
        )
        with self.ledger.lock:
            self.ledger.attempts[attempt.email] = attempt
        return attempt

    def start(self) -> SignatureDriver:
        self.started_at = time.time()
        for n in range(self.threads):
            t = threading.Thread(target=self._work, name=f"signer-{n}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def done(self) -> bool:
        return all(not t.is_alive() for t in self._threads)

    def join(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def _take_slot(self) -> int | None:
        with self._lock:
            if self._next_slot >= self.count:
                return None
            self._next_slot += 1
            return self._next_slot - 1

    def _work(self) -> None:
        with httpx.Client(timeout=30, follow_redirects=False) as client:
            while not self.stopping.is_set():
                slot = self._take_slot()
                if slot is None:
                    break
                if self.rate > 0:
                    due = self.started_at + slot / self.rate
                    self.stopping.wait(max(0.0, due - time.time()))
                while not self.stopping.is_set():
                    if self._sign(client, self._new_attempt()):
                        break
                    self.stopping.wait(0.5)  # as a person would, a moment later
        with self._lock:
            if self._accepted >= self.count or self.stopping.is_set():
                self.finished_at = self.finished_at or time.time()

    def _sign(self, client: httpx.Client, attempt: Attempt) -> bool:
        url = f"{self.base_url}/c/{attempt.campaign}"
        try:
            page = client.get(url)
        except httpx.HTTPError as exc:
            attempt.outcome, attempt.error = "refused", f"GET: {type(exc).__name__}"
            return False
        found = CSRF_RE.search(page.text) if page.status_code == 200 else None
        if found is None:
            attempt.outcome, attempt.status = "refused", page.status_code
            attempt.error = "GET: no form"
            return False
        form = {**attempt.form(), "csrf_token": found.group(1)}
        letter = LETTER_RE.search(page.text)
        if letter:  # an editable letter: the browser sends the textarea as it stands
            form["letter"] = html.unescape(letter.group(1))
        attempt.sent_at = time.time()
        with self._lock:
            self.in_flight += 1
        try:
            answer = client.post(f"{url}/sign", data=form)
        except httpx.HTTPError as exc:
            attempt.outcome, attempt.error = "unanswered", f"POST: {type(exc).__name__}"
            return False
        finally:
            with self._lock:
                self.in_flight -= 1
        attempt.answered_at, attempt.status = time.time(), answer.status_code
        if answer.status_code == 303 and answer.headers.get("location", "").endswith(
            "/check-email"
        ):
            attempt.outcome = "accepted"
            with self._lock:
                self._accepted += 1
                if self._accepted >= self.count:
                    self.finished_at = attempt.answered_at
            return True
        attempt.outcome = "refused"
        return False


class Confirmer:
    """Confirms each signature from its confirmation email, on ``threads`` threads."""

    def __init__(self, ledger: Ledger, *, threads: int = 4, patience: float = 300.0) -> None:
        self.ledger, self.threads, self.patience = ledger, threads, patience
        self.inbox: queue.Queue[Envelope | None] = queue.Queue()
        self.busy = 0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def take(self, env: Envelope) -> None:
        """The sink's listener (runs on its event loop: only queues the envelope)."""
        if env.purpose == "confirmation":
            self.inbox.put(env)

    def start(self) -> Confirmer:
        for n in range(self.threads):
            t = threading.Thread(target=self._work, name=f"confirmer-{n}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def idle(self) -> bool:
        return self.inbox.empty() and self.busy == 0

    def stop(self) -> None:
        for _ in self._threads:
            self.inbox.put(None)
        for t in self._threads:
            t.join(30)

    def _work(self) -> None:
        with httpx.Client(timeout=30, follow_redirects=False) as client:
            while True:
                env = self.inbox.get()
                if env is None:
                    return
                with self._lock:
                    self.busy += 1
                try:
                    self._confirm(client, env)
                finally:
                    with self._lock:
                        self.busy -= 1

    def _confirm(self, client: httpx.Client, env: Envelope) -> None:
        with self.ledger.lock:
            self.ledger.confirmations_seen[env.signature_id or "?"] += 1
            first = self.ledger.confirmations_seen[env.signature_id or "?"] == 1
            attempt = self.ledger.attempts.get((env.intended or "").lower())
            if attempt is None:
                self.ledger.unknown_confirmations += 1
                return
            if not first or attempt.confirm == "confirmed":
                return  # a second copy: the supporter already followed the first
            attempt.signature_id = env.signature_id
        if env.confirm_url is None:
            attempt.confirm = "invalid"
            return
        deadline = time.monotonic() + self.patience
        pause = 0.5
        while time.monotonic() < deadline:
            attempt.confirm_tries += 1
            result = self._once(client, env.confirm_url)
            if result in ("confirmed", "invalid"):
                attempt.confirm = result
                attempt.confirmed_at = time.time()
                return
            attempt.confirm = result
            time.sleep(pause)
            pause = min(pause * 2, 10)
        # Out of patience: the last outcome stands ("failed", or "unanswered": it may have worked).

    @staticmethod
    def _once(client: httpx.Client, link: str) -> str:
        try:
            page = client.get(link)
        except httpx.HTTPError:
            return "failed"
        if page.status_code == 400:
            return "invalid"
        found = CSRF_RE.search(page.text) if page.status_code == 200 else None
        if found is None:
            return "failed"
        try:
            done = client.post(link, data={"csrf_token": found.group(1)})
        except httpx.HTTPError:
            return "unanswered"  # it may have been confirmed: pressing again is harmless
        if done.status_code == 303 and "/thanks/" in done.headers.get("location", ""):
            return "confirmed"
        return "invalid" if done.status_code == 400 else "failed"


def as_counts(values: list[Any]) -> dict[str, int]:
    return dict(Counter(str(v) for v in values))
