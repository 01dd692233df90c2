"""The staff pages under /admin: login, campaigns and charts, the update composer, failed letters
and dead-letter queues. Every page but the login page needs a staff session (``web.py``)."""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Add the staff pages to the intake app."""
    from services.intake.admin import composer, login, operations, pages, web

    app.add_exception_handler(web.LoginRequired, web.login_required)
    for module in (login, pages, composer, operations):
        app.include_router(module.router)
