"""The resolver's backends, as DEARMP_RESOLVER_BACKENDS names them: ``local`` (the imported
tables, lookup.py) and ``postcodes_io`` (postcodes.io and the Members API, remote.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine

from services.resolver.lookup import Backend, LocalBackend
from services.resolver.remote import CachedHttp, MembersApi, PostcodesIoBackend


def make_backends(
    names: str,
    engine: Engine,
    *,
    postcodes_io_url: str,
    members_api_url: str,
    http: object | None = None,
    dissolved_from: datetime | None = None,
) -> list[Backend]:
    """The backends named in DEARMP_RESOLVER_BACKENDS, in order."""
    out: list[Backend] = []
    for name in [n.strip() for n in names.split(",") if n.strip()]:
        if name == "local":
            out.append(LocalBackend(engine, dissolved_from))
        elif name == "postcodes_io":
            client = http if isinstance(http, CachedHttp) else CachedHttp(engine)
            out.append(
                PostcodesIoBackend(client, postcodes_io_url, MembersApi(client, members_api_url))
            )
        else:
            raise ValueError(f"unknown resolver backend {name!r} (use local, postcodes_io)")
    return out
