"""The staff pages under /admin: login, campaigns and charts, the update composer, failed letters,
dead-letter queues, an organisation's accounts and webhooks. Every page but the login page needs a
staff session, and sees only the account's organisation (``web.py``)."""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Add the staff pages to the intake app."""
    from services.intake.admin import (
        accounts_pages,
        composer,
        editor,
        exports,
        help_requests,
        login,
        operations,
        pages,
        web,
        webhooks_pages,
    )

    app.add_exception_handler(web.LoginRequired, web.login_required)
    app.add_exception_handler(web.NotFound, web.not_found)
    app.add_exception_handler(web.Forbidden, web.forbidden)
    for module in (
        login,
        editor,
        pages,
        composer,
        operations,
        accounts_pages,
        webhooks_pages,
        exports,
        help_requests,
    ):
        for router in getattr(module, "routers", [getattr(module, "router", None)]):
            app.include_router(router)
