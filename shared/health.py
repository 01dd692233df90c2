"""A small HTTP server for workers: ``/healthz``, ``/readyz`` (database and broker) and ``/metrics``."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

Check = Callable[[], None]


def run_checks(checks: dict[str, Check]) -> tuple[bool, dict[str, str]]:
    results: dict[str, str] = {}
    ok = True
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # a check reports; it never takes the server down
            ok = False
            results[name] = f"unavailable: {type(exc).__name__}"
    return ok, results


def serve_health(
    port: int, checks: dict[str, Check], host: str = "127.0.0.1"
) -> ThreadingHTTPServer:
    class HealthHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path == "/healthz":
                self._send(200, "application/json", b'{"status": "ok"}')
            elif self.path == "/readyz":
                ok, results = run_checks(checks)
                body = json.dumps({"status": "ok" if ok else "unavailable", "checks": results})
                self._send(200 if ok else 503, "application/json", body.encode())
            elif self.path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest())
            else:
                self._send(404, "application/json", b'{"detail": "not found"}')

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:  # keep probes out of the logs
            pass

    server = ThreadingHTTPServer((host, port), HealthHandler)
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
