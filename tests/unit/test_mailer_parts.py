"""The mailer's small parts: the shared rate limit, supporter identity and masking."""

from __future__ import annotations

import smtplib
import threading

import pytest

from services.mailer.reports import render_failed
from shared.supporters import mask_addresses, mask_email, normalise_email, supporter_key
from shared.throttle import TokenBucket


class FakeClock:
    """Time that moves only when the test moves it; sleeps are recorded, not slept."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)


def test_token_bucket_spaces_messages_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, clock=clock.time, sleep=clock.sleep)
    waits = [bucket.acquire() for _ in range(5)]
    # One token saved up, then each caller waits one more slot (0.1 s) than the one before.
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    clock.now = 10.0  # a long quiet spell refills only up to the burst
    assert bucket.acquire() == 0.0
    assert bucket.acquire() == pytest.approx(0.1)


def test_token_bucket_is_shared_fairly_by_threads() -> None:
    clock = FakeClock()
    bucket = TokenBucket(100, clock=clock.time, sleep=clock.sleep)
    threads = [
        threading.Thread(target=lambda: [bucket.acquire() for _ in range(25)]) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 200 acquisitions at 100/s with the clock standing still: reservations 0.01 s apart, no
    # two threads given the same slot.
    assert sorted(round(s, 6) for s in clock.slept) == [round(i / 100, 6) for i in range(1, 200)]


def test_token_bucket_zero_is_unlimited() -> None:
    bucket = TokenBucket(0, sleep=lambda s: pytest.fail("must not sleep"))
    assert all(bucket.acquire() == 0.0 for _ in range(1000))


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        # Gmail ignores dots and +tags, and googlemail.com is the same mailbox.
        ("Jo.Bloggs+x@GoogleMail.com", "jobloggs@gmail.com"),
        ("Jo.Bloggs+campaign@GMail.com", "jobloggs@gmail.com"),
        ("jobloggs@googlemail.com", "jobloggs@gmail.com"),
        ("j.o.b+a+b@gmail.com", "job@gmail.com"),
        # Outlook and the like drop +tags but keep dots.
        ("Jo+x@outlook.com", "jo@outlook.com"),
        ("Jo.Bloggs+news@Hotmail.com", "jo.bloggs@hotmail.com"),
        ("jo.bloggs+tag@icloud.com", "jo.bloggs@icloud.com"),
        # Everyone else: trimmed and lower-cased only; dots and +tags kept.
        ("  Jo.Bloggs@Example.ORG ", "jo.bloggs@example.org"),
        ("jo+tag@example.org", "jo+tag@example.org"),
        ("Jo.Bloggs+x@mail.gmail.com.example", "jo.bloggs+x@mail.gmail.com.example"),
        ("王@例え.jp", "王@例え.jp"),
    ],
)
def test_normalise_email(address: str, expected: str) -> None:
    assert normalise_email(address) == expected


def test_supporter_key_is_per_person_not_per_spelling() -> None:
    assert supporter_key("s", "Jo.Bloggs+x@gmail.com") == supporter_key("s", "jobloggs@gmail.com")
    assert supporter_key("s", "jo@example.org") != supporter_key("t", "jo@example.org")
    assert "jo" not in supporter_key("s", "jo@example.org")


def test_masking_hides_the_address() -> None:
    assert mask_email("jo.bloggs@example.org") == "j***@example.org"
    assert mask_email("") == "***"
    reason = "550 5.1.1 <jo.bloggs@example.org>: Recipient address rejected"
    assert mask_addresses(reason) == "550 5.1.1 <j***@example.org>: Recipient address rejected"
    table = render_failed(
        [
            {
                "failed_at": "2026-01-02T03:04:05+00:00",
                "campaign": "camp",
                "purpose": "letter",
                "signature_id": "sid",
                "recipient": mask_email("mp@parliament.uk"),
                "reason": "550 refused",
            }
        ]
    )
    assert "m***@parliament.uk" in table and "mp@parliament.uk" not in table
    assert table.splitlines()[-1] == "1 failed"


class _Recorder:
    """Just enough of smtplib.SMTP for its mail/rcpt: records the commands it would send."""

    does_esmtp = True
    mail = smtplib.SMTP.mail
    rcpt = smtplib.SMTP.rcpt

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def putcmd(self, cmd: str, args: str = "") -> None:
        self.sent.append((cmd, args))

    def getreply(self) -> tuple[int, bytes]:
        return 250, b"ok"

    def has_extn(self, name: str) -> bool:
        return True


@pytest.mark.parametrize(
    "address",
    [
        "jo@example.org",
        "jo.bloggs+campaign@mail.example.org",
        "o'brien@example.ie",
        "Jo Bloggs <jo@example.org>",
        '"odd name"@example.org',
        "jo@[127.0.0.1]",
        "zoë@example.org",
    ],
)
def test_envelope_commands_are_exactly_smtplibs(address: str) -> None:
    """The mailer writes plain envelope addresses itself (smtplib would parse them again):
    the MAIL and RCPT commands must be what smtplib sends, for plain and odd addresses alike."""
    from shared.smtp import _PlainEnvelope

    fast = type("Fast", (_PlainEnvelope, _Recorder), {})()
    plain = _Recorder()
    for options in ((), ("size=1234",), ("SMTPUTF8", "size=1")):
        for client in (fast, plain):
            client.mail(address, options)
            client.rcpt(address, options[1:])
    assert fast.sent == plain.sent


class _Scripted:
    """Just enough of an SMTP connection for ``sendmail``: answers come from a script, and what
    is written, read, reset and closed is recorded in order."""

    does_esmtp = True
    debuglevel = 0
    command_encoding = "ascii"
    putcmd = smtplib.SMTP.putcmd
    mail = smtplib.SMTP.mail
    rcpt = smtplib.SMTP.rcpt
    data = smtplib.SMTP.data
    sendmail = smtplib.SMTP.sendmail

    def __init__(self, replies: list[tuple[int, bytes]], extensions: tuple[str, ...]) -> None:
        self.replies = list(replies)
        self.extensions = extensions
        self.events: list[str] = []
        self.written = b""

    def ehlo_or_helo_if_needed(self) -> None:
        pass

    def has_extn(self, name: str) -> bool:
        return name.lower() in self.extensions

    def send(self, s: str | bytes) -> None:
        self.written += s.encode("ascii") if isinstance(s, str) else s
        self.events.append("send")

    def getreply(self) -> tuple[int, bytes]:
        self.events.append("read")
        return self.replies.pop(0)

    def _rset(self) -> None:
        self.events.append("rset")

    def close(self) -> None:
        self.events.append("close")


BODY = b"Subject: hi\r\n\r\n.a line starting with a dot\r\nand one without\r\n.\r\nend"
OK = [(250, b"ok"), (250, b"ok"), (250, b"ok"), (354, b"go"), (250, b"queued")]


def _both(replies: list[tuple[int, bytes]], to: list[str]) -> list[tuple[object, _Scripted]]:
    """(what sendmail returned or raised, the connection) for the pipelining sender and smtplib."""
    from shared.smtp import _Pipelining

    results = []
    for cls in (type("Fast", (_Pipelining, _Scripted), {}), _Scripted):
        conn = cls(replies, ("size", "pipelining"))
        try:
            outcome: object = conn.sendmail("letters@dearmp.example", to, BODY)
        except smtplib.SMTPException as exc:
            outcome = (type(exc), exc.args)
        results.append((outcome, conn))
    return results


def test_pipelining_writes_smtplibs_bytes_in_two_round_trips() -> None:
    """MAIL, RCPT and DATA leave together; then the body: exactly the bytes smtplib writes (SIZE,
    dot-stuffing, the final dot), with two waits for the server instead of five."""
    to = ["mp@parliament.example", "copy@example.org"]
    (fast_result, fast), (plain_result, plain) = _both(OK, to)
    assert fast_result == plain_result == {}
    assert fast.written == plain.written
    assert b"size=" in fast.written and b"\r\n..a line starting" in fast.written
    assert fast.events == ["send", "read", "read", "read", "read", "send", "read"]
    assert plain.events.count("send") == 5


@pytest.mark.parametrize(
    "replies",
    [
        pytest.param([(550, b"sender"), (503, b"no"), (503, b"no"), (503, b"no")], id="mail-550"),
        pytest.param([(421, b"bye"), (503, b"no"), (503, b"no"), (503, b"no")], id="mail-421"),
        pytest.param(
            [(250, b"ok"), (550, b"no"), (250, b"ok"), (354, b"go"), (250, b"q")], id="one-rcpt-550"
        ),
        pytest.param(
            [(250, b"ok"), (550, b"a"), (551, b"b"), (554, b"none")], id="all-rcpt-refused"
        ),
        pytest.param(
            [(250, b"ok"), (550, b"a"), (550, b"b"), (354, b"go"), (250, b"q")],
            id="all-refused-but-354",
        ),
        pytest.param([(250, b"ok"), (421, b"bye"), (250, b"ok"), (354, b"go")], id="rcpt-421"),
        pytest.param([(250, b"ok"), (250, b"ok"), (250, b"ok"), (451, b"later")], id="data-451"),
        pytest.param(
            [(250, b"ok"), (250, b"ok"), (250, b"ok"), (354, b"go"), (552, b"big")], id="end-552"
        ),
        pytest.param(
            [(250, b"ok"), (250, b"ok"), (250, b"ok"), (354, b"go"), (421, b"bye")], id="end-421"
        ),
    ],
)
def test_pipelining_answers_every_refusal_as_smtplib_does(replies: list[tuple[int, bytes]]) -> None:
    """Whatever the server answers, the same exception (or the same refused recipients) as
    smtplib's sendmail, and the connection closed (421) or reset exactly when smtplib does."""
    (fast_result, fast), (plain_result, plain) = _both(replies, ["a@example.org", "b@example.org"])
    assert fast_result == plain_result
    assert ("close" in fast.events) == ("close" in plain.events)
    assert ("rset" in fast.events) == ("rset" in plain.events)
    data_opened_for_nobody = replies[3][0] == 354 and all(c >= 500 for c, _ in replies[1:3])
    if data_opened_for_nobody:
        assert fast.written.endswith(b"data\r\n.\r\n")  # the wrongly opened DATA is closed empty


def test_without_pipelining_on_offer_it_is_smtplibs_sendmail() -> None:
    from shared.smtp import _Pipelining

    conn = type("Fast", (_Pipelining, _Scripted), {})(OK[:1] + OK[2:], ("size",))
    assert conn.sendmail("letters@dearmp.example", ["mp@parliament.example"], BODY) == {}
    assert conn.events == ["send", "read", "send", "read", "send", "read", "send", "read"]
