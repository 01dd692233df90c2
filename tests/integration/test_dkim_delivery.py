"""A letter and its copy from the real mailer, DKIM-signed with the operator's key, verify with
dkimpy against the published public key (issue 19), and each signature expires a week after it
was made (``x=``, issue 25: a kept copy cannot be replayed as ours for ever)."""

from __future__ import annotations

import re
from pathlib import Path

import dkim

from shared.dkim import dns_record, generate_key
from tests.integration.mailer_helpers import resolved_event, stage_letters


def test_letters_are_dkim_signed_and_verify_against_the_public_key(
    system, mail, engine, tmp_path: Path
) -> None:
    key = generate_key(1024)
    (tmp_path / "dkim.pem").write_bytes(key)
    system.services["mailer"].start(
        {
            "DEARMP_DKIM_SELECTOR": "s2026",
            "DEARMP_DKIM_PRIVATE_KEY_FILE": str(tmp_path / "dkim.pem"),
            "DEARMP_DKIM_DOMAIN": "dearmp.example",
        }
    )
    system.start("relay")
    stage_letters(engine, [resolved_event(first_name="Siân", comment="Tom & Jerry <3")])

    def published(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"s2026._domainkey.dearmp.example."
        return dns_record(key).encode()

    caught = mail.handler.wait_for(2, timeout=60)  # the letter and the supporter's copy
    assert len(caught) == 2
    for c in caught:
        assert c.data.startswith(b"DKIM-Signature:")
        assert dkim.verify(c.data, dnsfunc=published), c.message["Message-ID"]
        header = re.match(rb"DKIM-Signature:(.*?)\r\n(?![ \t])", c.data, re.S)
        assert header is not None
        found = dict(
            tag.split("=", 1)
            for tag in re.sub(r"\s+", "", header.group(1).decode()).split(";")
            if tag
        )
        assert int(found["x"]) - int(found["t"]) == 7 * 86400, found
    # And a signature is not a formality: the same bytes with another key's record fail.
    other = dns_record(generate_key(1024)).encode()
    assert not dkim.verify(caught[0].data, dnsfunc=lambda name, timeout=5: other)
