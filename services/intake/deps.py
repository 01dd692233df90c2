"""FastAPI dependencies as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Engine as SAEngine

from services.intake.db import IntakeDb
from shared.config import Settings as SettingsModel


# Async (they only read app state): FastAPI runs a plain ``def`` dependency in a worker thread.
async def get_engine(request: Request) -> SAEngine:
    return request.app.state.engine  # type: ignore[no-any-return]


async def get_settings(request: Request) -> SettingsModel:
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_db(request: Request) -> IntakeDb:
    return request.app.state.db  # type: ignore[no-any-return]


def client_ip(request: Request) -> str:
    """The caller's address, as ``clients.ForwardedClient`` set it by ``clients.client_address``
    (behind trusted proxies, the rightmost X-Forwarded-For address that is not one of them)."""
    return request.client.host if request.client else "unknown"


Engine = Annotated[SAEngine, Depends(get_engine)]
Db = Annotated[IntakeDb, Depends(get_db)]
Settings = Annotated[SettingsModel, Depends(get_settings)]
