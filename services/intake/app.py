"""The intake FastAPI application."""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import psycopg
import swagger_ui_bundle
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from psycopg_pool import PoolTimeout
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from services.intake import admin, api, pages, printable, replies, unsubscribe
from services.intake.clients import ForwardedClient
from services.intake.db import IntakeDb
from services.intake.headers import SecurityHeaders
from services.intake.limits import BodyLimit
from shared.config import Settings
from shared.health import run_checks
from shared.logging import bound_context, error_detail, frames_of, get_logger

log = get_logger(__name__)


def _friendly(errors: list[dict]) -> list[dict[str, str]]:  # type: ignore[type-arg]
    out = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        message = str(err.get("msg", "Invalid value")).removeprefix("Value error, ")
        out.append({"field": ".".join(loc) or "body", "message": message})
    return out


class RequestContext:
    """Bind the request id and path to every log line of a request. A plain ASGI middleware:
    Starlette's BaseHTTPMiddleware costs a good share of a request at petition-peak rates."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = (
            dict(scope.get("headers") or []).get(b"x-request-id", b"").decode(errors="replace")
        )[:64] or uuid.uuid4().hex[:16]
        # Kept in the request's state too: the 500 handler runs outside this context.
        scope.setdefault("state", {})["request_id"] = request_id
        with bound_context(request_id=request_id, path=scope.get("path", "")):
            await self.app(scope, receive, send)


def create_app(settings: Settings, engine: Engine, ready_checks: dict | None = None) -> FastAPI:  # type: ignore[type-arg]
    @asynccontextmanager
    async def lifespan(_app: FastAPI):  # type: ignore[no-untyped-def]
        # Few threads for the blocking database work: dozens of threads fighting over the GIL
        # and the pool cost more than they give on a small machine.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.http_threads
        await app.state.db.open()
        try:
            yield
        finally:
            await app.state.db.close()

    app = FastAPI(
        lifespan=lifespan,
        title="Dear MP intake",
        version="1",
        openapi_url="/openapi.json",
        docs_url=None,  # served below from the installed swagger-ui-bundle, not a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    # The same database as the engine's, reached asynchronously for signing.
    app.state.db = IntakeDb(
        engine.url.render_as_string(hide_password=False), pool_size=settings.http_db_pool
    )
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(unsubscribe.router)
    app.include_router(replies.router)
    app.include_router(printable.router)  # the letter to post, for an MP with no email
    admin.install(app)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.mount(
        "/api/docs/static", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs"
    )

    @app.get("/api/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Dear MP intake API",
            swagger_js_url="/api/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/api/docs/static/swagger-ui.css",
            swagger_favicon_url="/api/docs/static/favicon-32x32.png",
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/api/") or exc.status_code != 404:
            return JSONResponse(
                {"detail": exc.detail, "errors": []},
                status_code=exc.status_code,
                headers=getattr(exc, "headers", None),
            )
        return pages.page(request, "not_found.html", 404)

    # Innermost: the client's address (and scheme) as the pages and limits read it.
    app.add_middleware(ForwardedClient, proxies=settings.trusted_proxies)
    app.add_middleware(RequestContext)
    app.add_middleware(BodyLimit)
    app.add_middleware(SecurityHeaders)  # outermost: the 413 carries the headers too

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _friendly(list(exc.errors()))
        return JSONResponse(
            {"detail": "Please correct the highlighted fields", "errors": errors}, status_code=422
        )

    # Only a database that cannot be reached is "unavailable"; anything else is a bug to see.
    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(psycopg.InterfaceError)
    @app.exception_handler(PoolTimeout)
    async def database_unavailable(request: Request, exc: Exception) -> Response:
        log.error("database unavailable", error=type(exc).__name__)
        headers = {"Retry-After": "30"}
        if request.url.path.startswith("/api/"):
            return JSONResponse(
                {
                    "detail": "The service is briefly unavailable; nothing was saved. Try again soon."
                },
                status_code=503,
                headers=headers,
            )
        return pages.page(request, "unavailable.html", 503)

    # The database refused a value as data (a NUL byte, a number out of range): the request's
    # fault, not ours, and its transaction is rolled back. Say so, never 500.
    @app.exception_handler(DataError)
    @app.exception_handler(psycopg.DataError)
    async def unusable_value(request: Request, exc: Exception) -> Response:
        log.warning("value refused by the database", error=error_detail(exc))
        if request.url.path.startswith("/api/"):
            return JSONResponse(
                {"detail": "Something you sent could not be used; nothing was saved.", "errors": []},
                status_code=400,
            )
        return pages.page(request, "bad_request.html", 400)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # A bug: log where it happened and its class (the request id is bound), never its
        # message (a database error quotes the row: names, addresses), never show a traceback.
        log.error(
            "unhandled error",
            error=type(exc).__name__,
            where=frames_of(exc),
            request_id=getattr(request.state, "request_id", None),
            path=request.url.path,
        )
        if request.url.path.startswith("/api/"):
            return JSONResponse(
                {"detail": "Something went wrong on our side; nothing was saved."}, status_code=500
            )
        return pages.page(request, "unavailable.html", 500)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        checks = dict(ready_checks or {})
        ok, results = run_checks(checks)
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": results},
            status_code=200 if ok else 503,
        )

    # No /metrics here: this is the public port. ``serve.py`` serves it on the metrics port.

    return app
