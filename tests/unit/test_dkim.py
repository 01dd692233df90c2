"""DKIM signing (shared.dkim): a message we build, signed, verifies against the public key; a
changed body or a header added afterwards does not; a signature expires (``x=``), so a copy
replayed after that no longer verifies; the settings fail with one line."""

from __future__ import annotations

import re
import time
from pathlib import Path
from types import SimpleNamespace

import dkim
import pytest

from shared.config import ConfigError, Settings
from shared.dkim import DkimSigner, generate_key, signer_for
from shared.mail import build_message, smtp_bytes

KEY = generate_key(1024)  # short: quick to make; the CLI makes 2048-bit keys
SIGNER = DkimSigner("s1", "dearmp.example", KEY)
WEEK = 7 * 86400  # how long a signature is good for (shared.dkim.SIGNATURE_LIFETIME)


def dns(name: bytes, timeout: int = 5) -> bytes:
    assert name == b"s1._domainkey.dearmp.example."
    return SIGNER.dns_record().encode()


def message() -> bytes:
    msg = build_message(
        from_name="Jo Bloggs via Dear MP",
        from_addr="letters@dearmp.example",
        to_name="Real Member",
        to_addr="real.member.mp@parliament.uk",
        subject="Guardians for every trafficked child",
        text="Dear Real Member,\n\nPlease act.\n\nJo Bloggs\n1 Test Street\n",
        message_id="<letter.1@dearmp.example>",
        headers={"Reply-To": "jo@example.org"},
    )
    data = smtp_bytes(msg)
    assert data is not None
    return data


def test_a_signed_message_verifies_against_the_published_key() -> None:
    signed = SIGNER.sign(message())
    assert signed.startswith(b"DKIM-Signature:")
    assert dkim.verify(signed, dnsfunc=dns)


def test_a_changed_body_or_an_added_from_does_not_verify() -> None:
    signed = SIGNER.sign(message())
    assert not dkim.verify(signed.replace(b"Please act.", b"Please wait."), dnsfunc=dns)
    head, body = signed.split(b"\r\n\r\n", 1)
    added = head + b"\r\nFrom: Someone Else <boss@example.org>\r\n\r\n" + body
    assert not dkim.verify(added, dnsfunc=dns)  # From is oversigned


def tags(signed: bytes) -> dict[str, str]:
    """The DKIM-Signature's tags (unfolded)."""
    header = re.match(rb"DKIM-Signature:(.*?)\r\n(?![ \t])", signed, re.S)
    assert header, signed[:200]
    value = re.sub(rb"\s+", b"", header.group(1)).decode()
    return dict(tag.split("=", 1) for tag in value.split(";") if tag)


def test_a_signature_expires_a_week_after_it_was_made() -> None:
    before = int(time.time())
    found = tags(SIGNER.sign(message()))
    t, x = int(found["t"]), int(found["x"])
    assert before <= t <= int(time.time())
    assert x > t and x - t == WEEK


def test_a_copy_replayed_after_its_expiry_does_not_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    """Someone who kept one of our signed emails cannot pass it off as ours for ever: signed
    eight days ago (dkimpy allows 10 hours of clock slop), it no longer verifies, while the same
    message signed now does; and the expiry cannot be stretched without breaking the signature."""
    fresh = SIGNER.sign(message())
    assert dkim.verify(fresh, dnsfunc=dns)
    long_ago = time.time() - WEEK - 11 * 3600
    with monkeypatch.context() as m:  # dkimpy's clock only, while it signs
        m.setattr(dkim, "time", SimpleNamespace(time=lambda: long_ago))
        replayed = SIGNER.sign(message())
    assert int(tags(replayed)["t"]) == int(long_ago)
    assert not dkim.verify(replayed, dnsfunc=dns)
    x = tags(fresh)["x"].encode()
    stretched = fresh.replace(b"x=" + x, b"x=" + str(int(x) + 86400).encode(), 1)
    assert stretched != fresh and not dkim.verify(stretched, dnsfunc=dns)


def test_a_signer_may_be_given_another_lifetime() -> None:
    found = tags(DkimSigner("s1", "dearmp.example", KEY, lifetime=3600).sign(message()))
    assert int(found["x"]) - int(found["t"]) == 3600


def test_settings_name_what_is_wrong(tmp_path: Path) -> None:
    assert signer_for(Settings()) is None
    with pytest.raises(ConfigError, match="both DEARMP_DKIM_SELECTOR"):
        signer_for(Settings(dkim_selector="s1"))
    with pytest.raises(ConfigError, match="cannot read the DKIM key"):
        signer_for(Settings(dkim_selector="s1", dkim_private_key_file=str(tmp_path / "none")))
    (tmp_path / "bad.pem").write_text("not a key")
    with pytest.raises(ConfigError, match="not an unencrypted PEM private key"):
        signer_for(Settings(dkim_selector="s1", dkim_private_key_file=str(tmp_path / "bad.pem")))
    (tmp_path / "key.pem").write_bytes(KEY)
    signer = signer_for(
        Settings(dkim_selector="s1", dkim_private_key_file=str(tmp_path / "key.pem"))
    )
    assert signer == DkimSigner("s1", "dearmp.invalid", KEY)  # the mail domain by default


def test_keygen_writes_a_private_key_and_prints_its_records(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from services.ops.cli import app

    runner = CliRunner()
    key_file = tmp_path / "dkim.pem"
    args = ["dkim", "keygen", str(key_file), "--selector", "s1", "--domain", "dearmp.example"]
    done = runner.invoke(app, [*args, "--bits", "1024"])
    assert done.exit_code == 0, done.output
    assert key_file.stat().st_mode & 0o777 == 0o600
    record = DkimSigner("s1", "dearmp.example", key_file.read_bytes()).dns_record()
    assert f's1._domainkey.dearmp.example  "{record}"' in done.output
    again = runner.invoke(app, [*args, "--bits", "1024"])
    assert again.exit_code == 1 and "exists" in again.output
