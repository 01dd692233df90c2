"""A cap on request bodies: nothing intake takes is near 64 KiB (a signature with a 5,000-character
letter is about 25 KiB in UTF-8), so anything larger is refused before it is read, with 413: a
JSON answer for the API, a page for everything else (a form post never gets raw JSON)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY = 64 * 1024
PAGE = (
    b'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Too much was sent '
    b"\xe2\x80\x93 Dear MP</title>"
    b'<meta name="viewport" content="width=device-width, initial-scale=1"></head><body>'
    b'<main class="govuk-main-wrapper"><h1 class="govuk-heading-l">Too much was sent</h1>'
    b"<p>What you sent is longer than any form here takes. Go back, shorten it and try again."
    b"</p></main></body></html>\n"
)
JSON = b'{"detail": "The request body is too large (over 64 KiB)", "errors": []}'


class _TooLarge(Exception):
    pass


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, send)
            return
        seen = 0
        started = False

        async def counted() -> Message:  # a body sent without (or beyond) its length
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            if not started:
                await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        api = str(scope.get("path", "")).startswith("/api/")
        body, kind = (JSON, b"application/json") if api else (PAGE, b"text/html; charset=utf-8")
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", kind),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
