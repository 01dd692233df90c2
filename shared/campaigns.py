"""Campaign definitions: version-controlled YAML, validated into one pydantic model."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import jinja2
import sqlalchemy as sa
import yaml
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection, Engine

from shared.reference import DEFAULT_ORGANISATION, campaigns, organisations

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,98}$")
# The part of an editable letter that supporters may rewrite: {% block message %}…{% endblock %}.
MESSAGE_BLOCK = "message"


class CampaignError(ValueError):
    """A campaign file that cannot be loaded; the message names the file and the field."""


class TargetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["mp", "fixed"]
    name: str | None = None
    email: str | None = None
    # A fixed target's public handle on X ("ukhomeoffice"): the share links offer a post to it.
    handle: str | None = Field(default=None, pattern=r"^@?[A-Za-z0-9_]{1,15}$")

    @field_validator("handle")
    @classmethod
    def _bare_handle(cls, value: str | None) -> str | None:
        return value.lstrip("@") if value else None

    @model_validator(mode="after")
    def _fixed_needs_address(self) -> TargetSpec:
        if self.kind == "fixed" and not (self.name and self.email):
            raise ValueError("a fixed target needs both name and email")
        return self


class LetterSpec(BaseModel):
    """The letter's templates. ``editable``: supporters may rewrite the part of the letter inside
    ``{% block message %}…{% endblock %}`` (in ``body``, and in ``html`` when there is one); the
    greeting and the sign-off stay outside the block, filled in for them."""

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

    @field_validator("editable")
    @classmethod
    def _editable_needs_a_message_block(cls, editable: bool, info: ValidationInfo) -> bool:
        # Runs after body and html (declared before it); skipped when either was invalid.
        if editable:
            for name in ("body", "html"):
                source = info.data.get(name)
                if source is not None and message_block(source) is None:
                    if _stored(info):
                        return False  # stored before editable letters had a message block
                    raise ValueError(
                        f"true needs {{% block {MESSAGE_BLOCK} %}}…{{% endblock %}} in letter.{name} "
                        "around the words supporters may change"
                    )
        return editable


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
    # One line the letter ends with, saying how it was sent ("I am sending this through the
    # ECPAT UK campaign at https://…"): plain text, after the supporter's name and address.
    disclosure: str = Field(default="", max_length=300, pattern=r"^[^\r\n]*$")
    # What share links and social cards say; the campaign's address follows it. Default: title.
    share_text: str = Field(default="", max_length=240, pattern=r"^[^\r\n]*$")
    # The slug of the organisation that runs it (``dearmp orgs add``); none: the default one, or,
    # for a campaign already loaded, the one it has. Stored in ``campaigns.organisation`` only.
    organisation: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{1,98}$")

    @field_validator("letter")
    @classmethod
    def _message_block_is_plain_words(cls, letter: LetterSpec, info: ValidationInfo) -> LetterSpec:
        """The message block is shown to supporters on the form as text to edit: a supporter's
        details (or an MP's name, not known when they sign) inside it would reach them as
        placeholders and stay in the letter as such once they edit it."""
        target = info.data.get("target")
        if not letter.editable or target is None or _stored(info):
            return letter
        personal = {"supporter"} | ({"target"} if target.kind == "mp" else set())
        for name in ("body", "html"):
            source = getattr(letter, name)
            block = message_block(source) if source is not None else None
            used = sorted(personal & _names_in(block)) if block is not None else []
            if used:
                raise ValueError(
                    f"the {MESSAGE_BLOCK} block in {name} cannot use {used[0]}: supporters edit "
                    "it as plain text; put the greeting, their name and address outside it"
                )
        return letter


def _stored(info: ValidationInfo) -> bool:
    """Validating a definition already in the database (``get_campaign``), not a file: a rule
    added since it was loaded must not make the campaign unreadable; reloading applies it."""
    return bool(info.context and info.context.get("stored"))


def message_block(source: str) -> nodes.Block | None:
    """The ``message`` block of a letter template, or None if it has none."""
    tree = template_env().parse(source)
    return next((b for b in tree.find_all(nodes.Block) if b.name == MESSAGE_BLOCK), None)


def _names_in(node: nodes.Node) -> set[str]:
    return {n.name for n in node.find_all(nodes.Name) if n.ctx == "load"}


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
    """Add or replace the campaign. Its ``organisation`` must exist; without one a new campaign
    goes to the default organisation and a loaded one stays with its own."""
    org = campaign.organisation
    known = sa.select(organisations.c.slug).where(organisations.c.slug == org)
    if org is not None and conn.execute(known).first() is None:
        raise CampaignError(
            f"{campaign.slug}: organisation: there is no organisation {org!r} "
            "(add it with 'dearmp orgs add')"
        )
    stmt = insert(campaigns).values(
        slug=campaign.slug,
        title=campaign.title,
        definition=campaign.model_dump(mode="json", exclude={"organisation"}),
        updated_at=datetime.now(UTC),
        organisation=org or DEFAULT_ORGANISATION,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[campaigns.c.slug],
        set_={
            "title": stmt.excluded.title,
            "definition": stmt.excluded.definition,
            "updated_at": stmt.excluded.updated_at,
            **({"organisation": stmt.excluded.organisation} if org else {}),
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
    return parse_stored(slug, row.updated_at, row.definition)


class CampaignCache:
    """Campaigns by slug for a hot path, each re-read at most every ``ttl`` seconds (so an edit,
    or closing a campaign, applies that late there): one statement per campaign every few
    seconds instead of one for every event or page. Safe to share between threads."""

    def __init__(self, engine: Engine, ttl: float = 5.0) -> None:
        self.engine, self.ttl = engine, ttl
        self._found: dict[str, tuple[float, Campaign | None]] = {}

    def get(self, slug: str) -> Campaign | None:
        now = time.monotonic()
        hit = self._found.get(slug)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            campaign = get_campaign(conn, slug)
        if len(self._found) > 1000:
            self._found.clear()
        self._found[slug] = (now, campaign)
        return campaign


def parsed_as_of(slug: str, updated_at: object) -> Campaign | None:
    """The campaign's version of ``updated_at``, if this process has parsed it already."""
    return _parsed.get((slug, updated_at))  # type: ignore[arg-type]


def open_campaigns(conn: Connection) -> list[Campaign]:
    """Every campaign taking signatures, by title."""
    rows = conn.execute(
        sa.select(campaigns.c.slug, campaigns.c.updated_at, campaigns.c.definition)
    ).all()
    found = [parse_stored(row.slug, row.updated_at, row.definition) for row in rows]
    return sorted((c for c in found if c.open), key=lambda c: c.title.casefold())


def parse_stored(slug: str, updated_at: datetime, definition: dict[str, Any]) -> Campaign:
    """A stored campaign, parsed once per (slug, updated_at) in each process."""
    key = (slug, updated_at)
    campaign = _parsed.get(key)
    if campaign is None:
        if len(_parsed) > 1000:
            _parsed.clear()
        campaign = _parsed[key] = Campaign.model_validate(definition, context={"stored": True})
    return campaign
