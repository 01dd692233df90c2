"""A webhook receiver for tests (a small HTTP server on 127.0.0.1 that checks signatures and
dedupes by event id, as the README tells receivers to), and events to feed the updates worker."""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from shared import webhook_signing
from shared.messages import Envelope, LetterSent, SignatureConfirmed, Supporter
from tests.support import free_port


@dataclass
class Receiver:
    """``status`` is what it answers (200, or 503 while "down"); ``stop()`` closes its port and
    ``start()`` opens the same one again. ``accepted`` counts each event id it answered 2xx
    for the first time (a repeat is counted in ``repeats``, as a receiver's dedupe would)."""

    secret: str = ""
    status: int = 200
    port: int = field(default_factory=free_port)
    tried: Counter[str] = field(default_factory=Counter)
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)
    repeats: Counter[str] = field(default_factory=Counter)
    bad_signatures: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/dearmp"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                event_id = self.headers[webhook_signing.EVENT_ID]
                receiver.tried[event_id] += 1
                ok = webhook_signing.verify(
                    receiver.secret,
                    self.headers[webhook_signing.TIMESTAMP],
                    self.headers[webhook_signing.SIGNATURE],
                    body,
                )
                status = receiver.status if ok else 400
                if not ok:
                    receiver.bad_signatures += 1
                elif status < 300:
                    if event_id in receiver.accepted:
                        receiver.repeats[event_id] += 1
                    else:
                        receiver.accepted[event_id] = {
                            "type": self.headers[webhook_signing.EVENT_TYPE],
                            "body": json.loads(body),
                            "raw": body,
                            "timestamp": self.headers[webhook_signing.TIMESTAMP],
                            "signature": self.headers[webhook_signing.SIGNATURE],
                        }
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def confirmed(
    campaign: str, *, org_opt_in: bool = True, opt_in: bool = False, email: str | None = None
) -> Envelope:
    now = datetime.now(UTC)
    supporter = Supporter(
        first_name="Ada",
        last_name="Webhook",
        email=email or f"ada-{uuid.uuid4().hex[:8]}@example.org",
        postcode="GU11 1AA",
        opt_in=opt_in,
        signed_at=now,
    )
    signature_id = uuid.uuid4()
    event = SignatureConfirmed(
        signature_id=signature_id,
        campaign=campaign,
        supporter=supporter,
        org_opt_in_at=now if org_opt_in else None,
    )
    return Envelope.wrap(event, correlation_id=signature_id)


def letter_sent(of: Envelope) -> Envelope:
    signature_id = of.payload["signature_id"]
    event = LetterSent(signature_id=signature_id, purpose="letter", message_id="<m@x.invalid>")
    return Envelope.wrap(event, correlation_id=signature_id)
