"""The mailer's SMTP connection against real aiosmtpd servers: STARTTLS, implicit TLS (smtps://),
login, certificate checks, and PIPELINING offered or not. A fake certificate authority
(trustme) stands in for a public one; the sender trusts it through ``SSL_CERT_FILE``, as an
operator with a private CA would."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from shared.mailcatcher import CatchingHandler, MailCatcher
from shared.smtp import PermanentSmtpError, SetupRefused, SmtpSender, TemporarySmtpError

USER, PASSWORD = "dearmp", "correct horse battery staple"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: object
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def trusted(ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sender's default context trusts the fake CA (and only it)."""
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))


def _server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


def _serve(**options: object) -> Iterator[tuple[CatchingHandler, int]]:
    """A catching aiosmtpd server on a free port that requires login, with ``options``."""
    handler, port = CatchingHandler(), _free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        auth_required=True,
        authenticator=_authenticate,
        **options,  # type: ignore[arg-type]
    )
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def starttls_server(ca: trustme.CA) -> Iterator[tuple[CatchingHandler, int]]:
    """Plain on connect; STARTTLS required before login and mail."""
    yield from _serve(tls_context=_server_context(ca), require_starttls=True, auth_require_tls=True)


@pytest.fixture
def smtps_server(ca: trustme.CA) -> Iterator[tuple[CatchingHandler, int]]:
    """TLS from the first byte (port 465 style)."""
    yield from _serve(ssl_context=_server_context(ca), auth_require_tls=False)


def _message(n: int = 1) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = '"Siân Jones via Dear MP" <letters@dearmp.example>'
    msg["To"] = "mp@parliament.example"
    msg["Subject"] = f"Guardians for children ({n})"
    msg["Message-ID"] = f"<letter.{n}@dearmp.example>"
    msg.set_content(".A line that starts with a dot.\nYours sincerely,\nSiân\n")
    return msg


@contextmanager
def _catching(
    url_query: str = "", sender_class: type[SmtpSender] = SmtpSender, **catcher_options: Any
) -> Iterator[tuple[MailCatcher, Any]]:
    """A running catcher and a sender connected to it; both closed after."""
    catcher = MailCatcher(**catcher_options).start()
    sender = sender_class(catcher.url + url_query)
    try:
        yield catcher, sender
    finally:
        sender.close()
        catcher.stop()


def _ids(server: CatchingHandler | MailCatcher) -> list[str]:
    """The Message-IDs the server took, in order."""
    return [str(c.message["Message-ID"]) for c in server.messages]


def _send_two(sender: SmtpSender, handler: CatchingHandler) -> None:
    """Two messages on one session (the connection is kept), both arrive intact."""
    try:
        for n in (1, 2):
            sender.send(_message(n), to=["sandbox@dearmp.example"])
    finally:
        sender.close()
    assert _ids(handler) == [
        "<letter.1@dearmp.example>",
        "<letter.2@dearmp.example>",
    ]
    assert handler.messages[0].message.get_content().startswith(".A line that starts with a dot.")
    assert handler.messages[0].rcpt_tos == ["sandbox@dearmp.example"]


def test_starttls_and_login(starttls_server, trusted) -> None:
    handler, port = starttls_server
    url = f"smtp://{USER}:{PASSWORD.replace(' ', '%20')}@127.0.0.1:{port}?starttls=true"
    _send_two(SmtpSender(url), handler)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # TLS from the start
def test_implicit_tls_and_login(smtps_server, trusted) -> None:
    handler, port = smtps_server
    _send_two(
        SmtpSender(f"smtps://{USER}:{PASSWORD.replace(' ', '%20')}@127.0.0.1:{port}"), handler
    )


def test_a_refused_login_is_temporary_not_the_letters_failure(starttls_server, trusted) -> None:
    """535 to AUTH is the deployment's problem: retry (and let an operator fix it), never mark
    the letter failed."""
    handler, port = starttls_server
    sender = SmtpSender(f"smtp://{USER}:wrong@127.0.0.1:{port}?starttls=true")
    with pytest.raises(SetupRefused) as caught:
        sender.send(_message(), to=["sandbox@dearmp.example"])
    assert "535" in str(caught.value) and not caught.value.maybe_delivered
    assert handler.messages == []


def test_without_starttls_the_server_refuses_and_nothing_is_sent(starttls_server, trusted) -> None:
    """530 "must issue STARTTLS first" is about our set-up, not the letter: never permanent."""
    handler, port = starttls_server
    sender = SmtpSender(f"smtp://127.0.0.1:{port}")
    with pytest.raises(SetupRefused) as caught:
        sender.send(_message(), to=["sandbox@dearmp.example"])
    assert "530" in str(caught.value) and not caught.value.maybe_delivered
    sender.close()
    assert handler.messages == []


def test_an_untrusted_certificate_is_refused(starttls_server) -> None:
    """Without the CA in the trust store the certificate check fails: nothing is sent in clear
    or to an impostor, and the event is retried."""
    handler, port = starttls_server
    sender = SmtpSender(f"smtp://{USER}:{PASSWORD}@127.0.0.1:{port}?starttls=true")
    with pytest.raises(SetupRefused) as caught:
        sender.send(_message(), to=["sandbox@dearmp.example"])
    assert not caught.value.maybe_delivered
    assert handler.messages == []


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-at-a-time"])
def test_with_and_without_pipelining_every_answer_is_handled(pipelining: bool) -> None:
    """The same outcomes whether the server offers PIPELINING or not: delivered, 550 permanent,
    451 temporary (and the session still usable after each)."""
    with _catching(pipelining=pipelining) as (catcher, sender):
        sender.send(_message(1), to=["a@example.org", "b@example.org"])
        assert sender._smtp is not None
        assert sender._smtp.has_extn("pipelining") is pipelining
        catcher.handler.refuse_code = 550
        with pytest.raises(PermanentSmtpError):
            sender.send(_message(2), to=["a@example.org"])
        catcher.handler.refuse_code = 451
        with pytest.raises(TemporarySmtpError) as caught:
            sender.send(_message(3), to=["a@example.org"])
        assert not caught.value.maybe_delivered
        catcher.handler.refuse_code = None
        sender.send(_message(4), to=["a@example.org"])
    assert _ids(catcher) == [
        "<letter.1@dearmp.example>",
        "<letter.4@dearmp.example>",
    ]
    assert catcher.messages[0].rcpt_tos == ["a@example.org", "b@example.org"]


@pytest.mark.parametrize(("query", "writes"), [("", 2), ("?pipelining=false", 4)])
def test_pipelining_can_be_turned_off_in_the_url(query: str, writes: int) -> None:
    """For a server that offers PIPELINING but mishandles it: ``?pipelining=false`` writes one
    command at a time (MAIL, RCPT, DATA, the message: four writes, not two)."""
    with _catching(query) as (catcher, sender):
        sender.send(_message(1), to=["a@example.org"])  # opens the session
        smtp = sender._smtp
        assert smtp is not None and smtp.has_extn("pipelining")
        written: list[bytes] = []
        real_send = smtp.send
        smtp.send = lambda data: (written.append(data), real_send(data))[1]  # type: ignore[method-assign]
        sender.send(_message(2), to=["a@example.org"])
        assert len(written) == writes
    assert _ids(catcher) == [
        "<letter.1@dearmp.example>",
        "<letter.2@dearmp.example>",
    ]


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-at-a-time"])
def test_a_connection_lost_after_the_message_went_is_not_resent_by_the_sender(
    pipelining: bool,
) -> None:
    """The sender reopens a stale connection once by itself, but never once the message went
    out: the server may have taken it, so it reports ``maybe_delivered`` and leaves the resend
    to the event's retry, where ``letters.sends`` counts it."""
    with _catching(pipelining=pipelining) as (catcher, sender):
        sender.send(_message(1), to=["a@example.org"])
        catcher.handler.drop_after_taking = 1
        with pytest.raises(TemporarySmtpError) as caught:
            sender.send(_message(2), to=["a@example.org"])
        assert caught.value.maybe_delivered
        assert len(catcher.messages) == 2  # taken once, not sent again on a new connection
        sender.send(_message(3), to=["a@example.org"])
    assert _ids(catcher) == [f"<letter.{n}@dearmp.example>" for n in (1, 2, 3)]


def test_a_connection_the_server_closed_while_idle_is_reopened_once() -> None:
    with _catching() as (catcher, sender):
        sender.send(_message(1), to=["a@example.org"])
        catcher.stop()  # drops the idle connection
        catcher.start()
        sender.send(_message(2), to=["a@example.org"])  # no error: reopened before anything went
    assert _ids(catcher) == [
        "<letter.1@dearmp.example>",
        "<letter.2@dearmp.example>",
    ]


def test_the_update_sender_does_not_resend_by_itself_either() -> None:
    """The fan-out's byte sender (services/updates/sender.py) follows the same rule: after the
    content went out, a lost connection is ``maybe_delivered``, never a silent second copy."""
    from services.updates.sender import UpdateSender

    data = _message(1).as_bytes().replace(b"\n", b"\r\n")
    with _catching(sender_class=UpdateSender) as (catcher, sender):
        assert sender.send_bytes(data, sender="letters@dearmp.example", to=["a@example.org"])
        catcher.handler.drop_after_taking = 1
        with pytest.raises(TemporarySmtpError) as caught:
            sender.send_bytes(data, sender="letters@dearmp.example", to=["a@example.org"])
        assert caught.value.maybe_delivered
        assert len(catcher.messages) == 2
        assert sender.send_bytes(data, sender="letters@dearmp.example", to=["a@example.org"])
    assert len(catcher.messages) == 3


def test_530_and_a_refused_sender_address_are_our_set_up_not_the_letter() -> None:
    """530 to MAIL FROM (a login is needed), or a 5xx to MAIL FROM (our sender address is not
    allowed), would refuse every message: ``SetupRefused``, never permanent; the pause keeps
    every sender of the process from trying again until it ends, and a send that then goes
    through ends it."""
    from shared.smtp import SendingPause

    now = [0.0]
    changes: list[str | None] = []
    pause = SendingPause(10, 40, on_change=lambda r, _s: changes.append(r), clock=lambda: now[0])
    with _catching() as (catcher, sender):
        sender.pause = pause
        for code in (530, 553):
            catcher.handler.refuse_mail_from = code
            with pytest.raises(SetupRefused) as caught:
                sender.send(_message(code), to=["a@example.org"])
            assert str(code) in str(caught.value)
            with pytest.raises(SetupRefused, match="sending paused"):
                sender.send(_message(1), to=["a@example.org"])  # not even tried
            now[0] += 41
        catcher.handler.refuse_mail_from = None
        sender.send(_message(2), to=["a@example.org"])
    assert _ids(catcher) == ["<letter.2@dearmp.example>"]
    assert changes[-1] is None and len(changes) == 3  # paused, paused longer, resumed
