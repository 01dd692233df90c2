"""Fake postcodes.io and UK Parliament Members API, served over real HTTP on 127.0.0.1.

Answers use the real services' shapes. Tests change ``postcodes``, ``seats`` and ``contacts``
and can make the server fail: ``fail_with`` (status, headers) for the next N requests, or
``delay`` seconds before answering (to provoke client timeouts).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse


@dataclass
class FakeParliament:
    # postcode → (constituency name or None, code) | "invalid" | ("terminated", year, month)
    postcodes: dict[str, Any] = field(default_factory=dict)
    # constituency name → member dict or None (vacant)
    seats: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    # member id → list of contact dicts
    contacts: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    fail_with: tuple[int, dict[str, str]] | None = None
    failures_left: int = 0
    delay: float = 0.0
    requests: list[str] = field(default_factory=list)

    def start(self) -> FakeParliament:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                fake.requests.append(self.path)
                if fake.delay:
                    time.sleep(fake.delay)
                if fake.failures_left > 0 and fake.fail_with:
                    fake.failures_left -= 1
                    status, headers = fake.fail_with
                    return self._json(status, {"status": status, "error": "failure"}, headers)
                status, body = fake.answer(self.path)
                self._json(status, body)

            def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def fail(self, status: int, times: int, headers: dict[str, str] | None = None) -> None:
        self.fail_with, self.failures_left = (status, headers or {}), times

    # -- the two APIs' shapes ---------------------------------------------------------------
    def answer(self, path: str) -> tuple[int, Any]:
        parsed = urlparse(path)
        if parsed.path.startswith("/postcodes/"):
            return self._postcode(unquote(parsed.path.removeprefix("/postcodes/")))
        if parsed.path == "/api/Location/Constituency/Search":
            return self._constituency_search(parse_qs(parsed.query).get("searchText", [""])[0])
        if parsed.path.startswith("/api/Members/") and parsed.path.endswith("/Contact"):
            member_id = int(parsed.path.split("/")[3])
            return 200, {"value": self.contacts.get(member_id, []), "links": []}
        return 404, {"status": 404, "error": "Not found"}

    def _postcode(self, postcode: str) -> tuple[int, Any]:
        entry = self.postcodes.get(postcode.upper())
        if entry is None:
            return 404, {"status": 404, "error": "Postcode not found"}
        if entry == "invalid":
            return 404, {"status": 404, "error": "Invalid postcode"}
        if entry[0] == "terminated":
            return 404, {
                "status": 404,
                "error": "Postcode not found",
                "terminated": {
                    "postcode": postcode,
                    "year_terminated": entry[1],
                    "month_terminated": entry[2],
                    "longitude": -0.1,
                    "latitude": 51.5,
                },
            }
        name, code = entry
        return 200, {
            "status": 200,
            "result": {
                "postcode": postcode,
                "country": "England",
                "parliamentary_constituency": name,
                "parliamentary_constituency_2024": name,
                "codes": {
                    "parliamentary_constituency": code,
                    "parliamentary_constituency_2024": code,
                    "admin_district": "E07000111",
                },
            },
        }

    def _constituency_search(self, text: str) -> tuple[int, Any]:
        items = []
        for name, member in self.seats.items():
            if text.lower() in name.lower():
                rep: dict[str, Any] = {}
                if member is not None:
                    rep = {
                        "member": {"value": member, "links": []},
                        "representation": {"membershipFrom": name},
                    }
                items.append(
                    {
                        "value": {
                            "id": 4000 + len(items),
                            "name": name,
                            "startDate": "2024-07-04T00:00:00",
                            "currentRepresentation": rep or None,
                        },
                        "links": [],
                    }
                )
        return 200, {"items": items, "totalResults": len(items), "skip": 0, "take": 20}


def member(member_id: int, name: str, party: str = "Example Party") -> dict[str, Any]:
    return {
        "id": member_id,
        "nameListAs": name,
        "nameDisplayAs": name,
        "nameFullTitle": f"{name} MP",
        "nameAddressAs": f"Mx {name.split()[-1]}",
        "latestParty": {"id": 4, "name": party, "abbreviation": "EP"},
        "gender": "F",
    }
