"""Organisations that run campaigns: checked into one pydantic model, stored in
``shared.reference.organisations`` (``dearmp orgs add``), readable by any service (the mailer's
sender name, the campaign page's brand and opt-in)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection, Engine

from shared.reference import DEFAULT_ORGANISATION, campaigns, organisations
from shared.ttl_cache import TtlCache

SLUG = r"^[a-z0-9][a-z0-9-]{1,98}$"
ONE_LINE = r"^[^\r\n]*$"
PLATFORM = "Dear MP"


class OrganisationError(ValueError):
    """An organisation that cannot be saved; the message names the field, in one line."""


def https_address(value: str, field: str, *, path_ok: bool = False) -> str:
    """``value`` if it is an https:// address (or, ``path_ok``, a path on our own site such as
    ``/privacy``); otherwise ValueError naming ``field``. Never ``javascript:``, ``data:`` or
    ``//elsewhere``: these are links shown to supporters."""
    value = value.strip()
    if not value or (path_ok and re.match(r"^/[^/\\]", value)):
        return value
    if not re.match(r"^https://[^\s/]+\.[^\s]+$", value):
        raise ValueError(f"{field} must be an https:// address" + (" or a path" if path_ok else ""))
    return value


class Organisation(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    slug: str = Field(pattern=SLUG)
    name: str = Field(min_length=1, max_length=200, pattern=ONE_LINE)
    logo_url: str = ""
    colour: str = Field(default="", pattern=r"^(#[0-9a-fA-F]{6})?$")
    website: str = ""
    privacy_url: str = ""
    privacy_text: str = Field(default="", max_length=50_000)
    # The display name of the From: header. No address characters, so it cannot forge one.
    sender_name: str = Field(default="", max_length=120, pattern=r'^[^\r\n<>@",;]*$')
    # The wording of the tick box for the organisation's own mailing list; "" offers none.
    list_opt_in: str = Field(default="", max_length=500, pattern=ONE_LINE)

    @field_validator("logo_url", "website")
    @classmethod
    def _https_only(cls, value: str, info: Any) -> str:
        return https_address(value, info.field_name)

    @field_validator("privacy_url")
    @classmethod
    def _privacy_url(cls, value: str) -> str:
        return https_address(value, "privacy_url", path_ok=True)

    def with_defaults(self) -> Organisation:
        if self.sender_name:
            return self
        return self.model_copy(update={"sender_name": f"{self.name} via {PLATFORM}"})


def checked(**fields: Any) -> Organisation:
    """The organisation, or OrganisationError naming the first field that is wrong."""
    try:
        found = Organisation.model_validate(fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "organisation"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "string_pattern_mismatch":
            message = {
                "slug": "must be 2-99 lower-case letters, digits and dashes",
                "colour": "must be a colour like #1d70b8",
                "sender_name": 'must be one line without < > @ " , or ;',
            }.get(where, "must be one line")
        raise OrganisationError(f"{where}: {message}") from None
    if not (found.privacy_url or found.privacy_text):
        raise OrganisationError("give the organisation's privacy notice: a privacy URL or text")
    return found.with_defaults()


def save_organisation(conn: Connection, org: Organisation, *, update: bool = False) -> str:
    """Add the organisation (or, with ``update``, change it); returns what was done, one line."""
    values = org.model_dump()
    stmt = insert(organisations).values(**values, created_at=datetime.now(UTC))
    if update:
        stmt = stmt.on_conflict_do_update(
            index_elements=[organisations.c.slug],
            set_={k: stmt.excluded[k] for k in values if k != "slug"},
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=[organisations.c.slug])
    # xmax is 0 on a row this statement inserted, not on one it updated.
    added: Any = conn.execute(stmt.returning(sa.literal_column("xmax = 0"))).first()
    if added is None:
        raise OrganisationError(f"{org.slug} already exists (use --update to change it)")
    return f"{'added' if added[0] else 'updated'} organisation {org.slug}: {org.name}"


def get_organisation(conn: Connection, slug: str) -> Organisation | None:
    row = conn.execute(sa.select(organisations).where(organisations.c.slug == slug)).mappings()
    found = row.first()
    if found is None:
        return None
    return Organisation.model_construct(**{k: v for k, v in found.items() if k != "created_at"})


def list_organisations(conn: Connection) -> list[dict[str, Any]]:
    """Every organisation with how many campaigns it runs, by slug."""
    count = (
        sa.select(sa.func.count())
        .where(campaigns.c.organisation == organisations.c.slug)
        .scalar_subquery()
    )
    rows = conn.execute(
        sa.select(organisations.c.slug, organisations.c.name, count.label("campaigns")).order_by(
            organisations.c.slug
        )
    )
    return [dict(r._mapping) for r in rows]


def organisation_of(conn: Connection, campaign: str) -> str | None:
    """The slug of the organisation running the campaign (None: no such campaign)."""
    return conn.execute(
        sa.select(campaigns.c.organisation).where(campaigns.c.slug == campaign)
    ).scalar_one_or_none()


def campaigns_of(conn: Connection, organisation: str) -> list[str]:
    return list(
        conn.execute(
            sa.select(campaigns.c.slug)
            .where(campaigns.c.organisation == organisation)
            .order_by(campaigns.c.slug)
        ).scalars()
    )


def sender_name_for(conn: Connection, campaign: str) -> str | None:
    """The name on the emails to the campaign's supporters (its organisation's sender name),
    or None for a campaign not found."""
    return conn.execute(
        sa.select(organisations.c.sender_name)
        .join(campaigns, campaigns.c.organisation == organisations.c.slug)
        .where(campaigns.c.slug == campaign)
    ).scalar()


def list_opt_in_for(conn: Connection, campaign: str) -> tuple[str, str] | None:
    """(the organisation's name, the wording of its own-list opt-in) for the campaign's form, or
    None when its organisation offers none."""
    row = conn.execute(
        sa.select(organisations.c.name, organisations.c.list_opt_in)
        .join(campaigns, campaigns.c.organisation == organisations.c.slug)
        .where(campaigns.c.slug == campaign, organisations.c.list_opt_in != "")
    ).first()
    return (row.name, row.list_opt_in) if row else None


@dataclass(frozen=True)
class Brand:
    """Who runs a campaign, as its public page names them."""

    slug: str
    name: str
    website: str
    colour: str
    # Its privacy notice: its own address, or our page of its text (``privacy_link``).
    privacy: str = ""

    @property
    def platform(self) -> bool:
        """The default organisation: Dear MP itself, named already on every page."""
        return self.slug == DEFAULT_ORGANISATION


def brand_for(conn: Connection, campaign: str) -> Brand | None:
    row = conn.execute(
        sa.select(
            organisations.c.slug,
            organisations.c.name,
            organisations.c.website,
            organisations.c.colour,
            organisations.c.privacy_url,
            (organisations.c.privacy_text != "").label("has_privacy_text"),
        )
        .join(campaigns, campaigns.c.organisation == organisations.c.slug)
        .where(campaigns.c.slug == campaign)
    ).first()
    if row is None:
        return None
    privacy = privacy_link(row.slug, row.privacy_url, row.has_privacy_text)
    return Brand(row.slug, row.name, row.website, row.colour, privacy)


def privacy_link(slug: str, privacy_url: str, has_privacy_text: bool) -> str:
    """Where supporters read the organisation's privacy notice: its own address, else our page
    of the text it gave (``GET /privacy/{slug}``), else nowhere ("")."""
    return privacy_url or (f"/privacy/{slug}" if has_privacy_text else "")


# Per kind of value, by (engine, campaign): one process may serve more than one database (tests).
_caches: dict[tuple[str, float], TtlCache[tuple[int, str], Any]] = {}


def _cached(kind: str, engine: Engine, campaign: str, ttl: float, read: Any) -> Any:
    """``read(conn, campaign)``, at most every ``ttl`` seconds per process and campaign."""
    cache = _caches.setdefault((kind, ttl), TtlCache(ttl))

    def load() -> Any:
        with engine.connect() as conn:
            return read(conn, campaign)

    return cache.get((id(engine), campaign), load)


def cached_list_opt_in(engine: Engine, campaign: str, ttl: float = 5.0) -> tuple[str, str] | None:
    """``list_opt_in_for`` for the campaign page, read at most every ``ttl`` seconds per
    process (a changed wording shows that late; the signature records the wording as it is when
    the form is sent, read in the signing statement)."""
    return _cached("opt-in", engine, campaign, ttl, list_opt_in_for)  # type: ignore[no-any-return]


def cached_brand(engine: Engine, campaign: str, ttl: float = 5.0) -> Brand | None:
    """``brand_for`` for the campaign page, read at most every ``ttl`` seconds per process."""
    return _cached("brand", engine, campaign, ttl, brand_for)  # type: ignore[no-any-return]


__all__ = ["DEFAULT_ORGANISATION"]


# The organisation's owners, read where the mailer tells them its letters could not be written
# (services/mailer/problems.py). Intake's staff pages own the accounts (services/intake/admin/
# models.py ``staff``, roles.py ``Role.OWNER``); the mailer cannot import intake (intake reads
# the mailer's reports), so their address and role are read here, as organisation data.
_STAFF = sa.table("staff", sa.column("email"), sa.column("role"), sa.column("organisation"))
OWNER_ROLE = "owner"


def owner_addresses(conn: Connection, organisation: str) -> list[str]:
    """The addresses of the organisation's owners."""
    query = (
        sa.select(_STAFF.c.email)
        .where(_STAFF.c.organisation == organisation, _STAFF.c.role == OWNER_ROLE)
        .order_by(_STAFF.c.email)
    )
    return [str(email) for email in conn.execute(query).scalars()]
