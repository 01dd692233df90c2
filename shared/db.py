"""SQLAlchemy 2 + psycopg 3: one MetaData for every table, engines, and the migration runner."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    return sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=10,
        # No pre-ping: it costs a round trip on every checkout. A connection that died (Postgres
        # restarted) fails its first statement; SQLAlchemy then invalidates the pool, the request
        # answers 503 or the message is retried, and the next checkout gets a fresh connection.
        pool_pre_ping=False,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5},
        # An error never quotes the statement's values (names, addresses) into a log line.
        hide_parameters=True,
    )


def plain(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A row as JSON-ready values (datetimes and dates in ISO 8601), for exports."""
    return {str(k): (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    return make_engine(url)


def alembic_config(database_url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply migrations (``dearmp db upgrade``)."""
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def check_database(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))


def ensure_database(database_url: str) -> bool:
    """Create the database named in the URL if it does not exist yet. True if it was created."""
    url = sa.make_url(database_url)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database}
            ).first()
            if exists:
                return False
            conn.exec_driver_sql(f'CREATE DATABASE "{url.database}"')
            return True
    finally:
        admin.dispose()
