"""Campaign definitions: version-controlled YAML, validated into one pydantic model."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import jinja2
import sqlalchemy as sa
import yaml
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from shared.reference import campaigns

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,98}$")


class CampaignError(ValueError):
    """A campaign file that cannot be loaded; the message names the file and the field."""


class TargetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["mp", "fixed"]
    name: str | None = None
    email: str | None = None

    @model_validator(mode="after")
    def _fixed_needs_address(self) -> TargetSpec:
        if self.kind == "fixed" and not (self.name and self.email):
            raise ValueError("a fixed target needs both name and email")
        return self


class LetterSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: str
    body: str
    html: str | None = None
    editable: bool = False

    @field_validator("subject", "body", "html")
    @classmethod
    def _valid_template(cls, source: str | None) -> str | None:
        if source is not None:
            try:
                template_env().parse(source)
            except jinja2.TemplateSyntaxError as exc:
                raise ValueError(f"template error on line {exc.lineno}: {exc.message}") from None
        return source


class Campaign(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,98}$")
    title: str
    story: str = ""
    language: str = "en"
    target: TargetSpec
    letter: LetterSpec
    goal: int = Field(default=1000, ge=1)
    privacy_url: str = "/privacy"
    terms_url: str = "/terms"
    open: bool = True


def template_env() -> SandboxedEnvironment:
    # Campaign templates are written by staff: sandboxed, strict about undefined names.
    return SandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def read_campaign_file(path: Path) -> Campaign:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CampaignError(f"{path}: cannot read YAML ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise CampaignError(f"{path}: expected a mapping of campaign fields")
    try:
        return Campaign.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "campaign"
        raise CampaignError(
            f"{path}: {where}: {err['msg'].removeprefix('Value error, ')}"
        ) from None


def campaign_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
    return [path]


def save_campaign(conn: Connection, campaign: Campaign) -> None:
    stmt = insert(campaigns).values(
        slug=campaign.slug,
        title=campaign.title,
        definition=campaign.model_dump(mode="json"),
        updated_at=datetime.now(UTC),
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[campaigns.c.slug],
        set_={
            "title": stmt.excluded.title,
            "definition": stmt.excluded.definition,
            "updated_at": stmt.excluded.updated_at,
        },
    )
    conn.execute(stmt)


_parsed: dict[tuple[str, datetime], Campaign] = {}
_BY_SLUG = sa.select(campaigns.c.definition, campaigns.c.updated_at).where(
    campaigns.c.slug == sa.bindparam("slug")
)


def get_campaign(conn: Connection, slug: str) -> Campaign | None:
    """The campaign as stored now. Parsing (which checks every template) happens once per
    version of the campaign in each process, not on every call."""
    if not SLUG_RE.match(slug):
        return None  # not a slug we could have stored: no need to ask the database
    row = conn.execute(_BY_SLUG, {"slug": slug}).first()
    if row is None:
        return None
    key = (slug, row.updated_at)
    campaign = _parsed.get(key)
    if campaign is None:
        if len(_parsed) > 1000:
            _parsed.clear()
        campaign = _parsed[key] = Campaign.model_validate(row.definition)
    return campaign
