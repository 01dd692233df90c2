"""What every intake response carries, and HEAD wherever GET works: plain ASGI middleware (cheap
at petition-peak rates, unlike Starlette's BaseHTTPMiddleware).

- ``Content-Security-Policy``: our own origin only; no page may frame ours (``frame-ancestors``,
  clickjacking on the confirm button); no plugins; forms post only to us. Inline styles stay
  allowed (the staff charts are inline SVG with style attributes); no page runs inline script.
  The API docs page (``/api/docs``, FastAPI's Swagger UI, served from the installed
  swagger-ui-bundle package) starts itself with an inline script: that page alone allows it.
- ``X-Content-Type-Options: nosniff``; ``X-Frame-Options: DENY`` for browsers that predate
  ``frame-ancestors``.
- ``Referrer-Policy: no-referrer``: confirmation and thank-you links carry a token; a share link
  followed from the thank-you page must not hand it to another site.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'self'; "
    "frame-ancestors 'none'"
)
COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if scope.get("path") == "/api/docs" else CSP
        head = scope.get("method") == "HEAD"
        if head:  # answered as GET, without the body (its headers, Content-Length included)
            scope = {**scope, "method": "GET"}

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in {b"content-security-policy", *dict(COMMON)}
                ]
                message = {
                    **message,
                    "headers": [*headers, *COMMON, (b"content-security-policy", csp.encode())],
                }
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app(scope, receive, with_headers)
