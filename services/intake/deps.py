"""FastAPI dependencies as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Engine as SAEngine

from shared.config import Settings as SettingsModel


def get_engine(request: Request) -> SAEngine:
    return request.app.state.engine  # type: ignore[no-any-return]


def get_settings(request: Request) -> SettingsModel:
    return request.app.state.settings  # type: ignore[no-any-return]


def client_ip(request: Request) -> str:
    """The caller's address (behind trusted proxies, from X-Forwarded-For via uvicorn)."""
    return request.client.host if request.client else "unknown"


Engine = Annotated[SAEngine, Depends(get_engine)]
Settings = Annotated[SettingsModel, Depends(get_settings)]
