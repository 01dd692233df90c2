"""Campaign definitions: version-controlled YAML, validated into one pydantic model."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Self

import sqlalchemy as sa
import yaml
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection, Engine

from shared import templates
from shared.organisations import https_address
from shared.reference import DEFAULT_ORGANISATION, campaign_versions, campaigns, organisations
from shared.templates import MESSAGE_BLOCK, TemplateProblem, template_problem
from shared.ttl_cache import TtlCache

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,98}$")
# The part of an editable letter that supporters may rewrite: {% block message %}…{% endblock %}
# (shared.templates.MESSAGE_BLOCK).
__all__ = ["MESSAGE_BLOCK", "Campaign", "CampaignError", "message_block"]


class CampaignError(ValueError):
    """A campaign file that cannot be loaded; the message names the file and the field."""


TargetKind = Literal["mp", "fixed", "both"]
Status = Literal["scheduled", "open", "paused", "closed"]
Delivery = Literal["individual", "digest"]


class TargetSpec(BaseModel):
    """``mp``: each supporter's own MP; ``fixed``: one named target for every letter; ``both``:
    the letter goes to the supporter's MP and a copy of it to the named target."""

    model_config = ConfigDict(extra="forbid")
    kind: TargetKind
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
        if self.kind != "mp" and not (self.name and self.email):
            if self.kind == "fixed":
                raise ValueError("a fixed target needs both name and email")
            raise ValueError("both needs the name and email of the fixed target that gets a copy")
        return self

    @property
    def fixed(self) -> bool:
        """Every letter goes to the named target, not to an MP."""
        return self.kind == "fixed"


class LetterSpec(BaseModel):
    """The letter's templates (Liquid, ``shared.templates``). ``editable``: supporters may
    rewrite the part of the letter inside ``{% block message %}…{% endblock %}`` (in ``body``,
    and in ``html`` when there is one); the greeting and the sign-off stay outside the block,
    filled in for them. A new definition's templates must be written out, within the budget,
    for every sample supporter (``shared.letters.template_problem``)."""

    model_config = ConfigDict(extra="forbid")
    subject: str = Field(max_length=500)
    body: str = Field(max_length=30_000)
    html: str | None = Field(default=None, max_length=60_000)
    editable: bool = False

    @field_validator("subject", "body", "html")
    @classmethod
    def _valid_template(cls, source: str | None, info: ValidationInfo) -> str | None:
        if source is None:
            return source
        html = info.field_name == "html"
        if _stored(info):
            return source  # tried when it was saved; one that no longer parses fails visibly
        try:
            templates.parse(source, html)
        except TemplateProblem as exc:
            where = " on " if str(exc).startswith("line ") else ": "
            raise ValueError(f"template error{where}{exc}") from None
        problem = template_problem(source, html)
        if problem:
            raise ValueError(f"cannot be written for every supporter: {problem}")
        return source

    @field_validator("editable")
    @classmethod
    def _editable_needs_a_message_block(cls, editable: bool, info: ValidationInfo) -> bool:
        # Runs after body and html (declared before it); skipped when either was invalid.
        if editable:
            for name in ("body", "html"):
                source = info.data.get(name)
                if source is not None and _no_message_block(source):
                    if _stored(info):
                        return False  # stored before editable letters had a message block
                    raise ValueError(
                        f"true needs {{% block {MESSAGE_BLOCK} %}}…{{% endblock %}} in letter.{name} "
                        "around the words supporters may change"
                    )
        return editable


class Campaign(BaseModel):
    """A campaign's definition. ``open`` in a file (stored as such) is the organiser's switch
    (false: paused); the ``open`` attribute is whether it takes signatures now, the switch and
    the schedule (``opens_at``, ``closes_at``) together, so every reader of ``campaign.open``
    follows the schedule. ``version``: the stored version it was read from (0: not stored)."""

    model_config = ConfigDict(extra="forbid", validate_by_name=True, serialize_by_alias=True)
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,98}$")
    title: str
    story: str = ""
    language: str = "en"
    target: TargetSpec
    letter: LetterSpec
    goal: int = Field(default=1000, ge=1)
    privacy_url: str = "/privacy"
    terms_url: str = "/terms"
    switched_on: bool = Field(default=True, alias="open")
    # When it starts and stops taking signatures by itself (ISO 8601 with a time zone); none:
    # from when it is loaded, until someone closes it.
    opens_at: AwareDatetime | None = None
    closes_at: AwareDatetime | None = None
    # What the thank-you page says after signing (Markdown, no raw HTML); default: nothing more.
    thank_you: str = Field(default="", max_length=2000)
    # One line the letter ends with, saying how it was sent ("I am sending this through the
    # ECPAT UK campaign at https://…"): plain text, after the supporter's name and address.
    disclosure: str = Field(default="", max_length=300, pattern=r"^[^\r\n]*$")
    # What share links and social cards say; the campaign's address follows it. Default: title.
    share_text: str = Field(default="", max_length=240, pattern=r"^[^\r\n]*$")
    # Whether the public page shows how many MPs replied to their constituents ("Did your MP
    # reply?", services/intake/reply_rates.py); the staff pages always do.
    show_reply_rate: bool = False
    # The slug of the organisation that runs it (``dearmp orgs add``); none: the default one, or,
    # for a campaign already loaded, the one it has. Stored in ``campaigns.organisation`` only.
    organisation: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{1,98}$")
    # ``individual``: one email per letter; ``digest``: each MP's office gets one email a day
    # for the campaign listing every constituent who wrote (services/mailer/digests.py).
    delivery: Delivery = "individual"
    _version: int = PrivateAttr(default=0)

    @field_validator("privacy_url", "terms_url")
    @classmethod
    def _link_shown_to_supporters(cls, value: str, info: ValidationInfo) -> str:
        """https:// or a path of ours: never ``javascript:`` or ``data:``. Empty, or a bad one
        stored before this rule: our own notice."""
        name = info.field_name or "privacy_url"
        ours = "/" + name.removesuffix("_url")
        try:
            return https_address(value, name, path_ok=True) or ours
        except ValueError:
            if _stored(info):
                return ours
            raise

    @field_validator("closes_at")
    @classmethod
    def _closes_after_it_opens(
        cls, closes_at: datetime | None, info: ValidationInfo
    ) -> datetime | None:
        opens_at = info.data.get("opens_at")
        if closes_at is not None and opens_at is not None and closes_at <= opens_at:
            raise ValueError("must be after opens_at")
        return closes_at

    @property
    def version(self) -> int:
        return self._version

    def status(self, now: datetime | None = None) -> Status:
        """``closed`` (closes_at has passed), ``paused`` (switched off), ``scheduled`` (switched
        on, before opens_at: it opens by itself then), or ``open``."""
        now = now or datetime.now(UTC)
        if self.closes_at is not None and now >= self.closes_at:
            return "closed"
        if not self.switched_on:
            return "paused"
        return "scheduled" if self.opens_at is not None and now < self.opens_at else "open"

    @property
    def open(self) -> bool:
        """Whether it takes signatures now."""
        return self.status() == "open"

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """As pydantic's, and ``update={"open": …}`` sets the switch, as ``open`` in a file does
        (the ``open`` attribute is read-only: it follows the schedule too)."""
        if update and "open" in update:
            update = {**update, "switched_on": update["open"]}
            del update["open"]
        return super().model_copy(update=update, deep=deep)

    @field_validator("letter")
    @classmethod
    def _message_block_is_plain_words(cls, letter: LetterSpec, info: ValidationInfo) -> LetterSpec:
        """The message block is shown to supporters on the form as text to edit: a supporter's
        details (or an MP's name, not known when they sign) inside it would reach them as
        placeholders and stay in the letter as such once they edit it."""
        target = info.data.get("target")
        if not letter.editable or target is None or _stored(info):
            return letter
        personal = {"supporter"} | (set() if target.kind == "fixed" else {"target"})
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


def _no_message_block(source: str) -> bool:
    """The template has no message block (one stored that no longer parses is not judged)."""
    try:
        return message_block(source) is None
    except TemplateProblem:
        return False


def _stored(info: ValidationInfo) -> bool:
    """Validating a definition already in the database (``get_campaign``), not a file: a rule
    added since it was loaded must not make the campaign unreadable; reloading applies it."""
    return bool(info.context and info.context.get("stored"))


message_block = templates.message_block


def _names_in(block: templates.BoundTemplate) -> set[str]:
    return templates.names_used(block)


def campaign_problems(exc: ValidationError) -> list[tuple[str, str]]:
    """Each problem as (where, what): ``("letter.body", "template error on line 3: …")``. The
    words a campaign file's error and the staff pages' campaign form both show."""
    found = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "campaign"
        found.append((where, err["msg"].removeprefix("Value error, ")))
    return found


def read_campaign_yaml(text: str, name: str) -> Campaign:
    """A campaign from YAML text; ``CampaignError`` names ``name`` and the first bad field."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CampaignError(f"{name}: cannot read YAML ({exc.__class__.__name__})") from None
    except RecursionError:  # lists or mappings nested thousands deep: no campaign is
        raise CampaignError(f"{name}: cannot read YAML (nested too deeply)") from None
    if not isinstance(data, dict):
        raise CampaignError(f"{name}: expected a mapping of campaign fields")
    try:
        return Campaign.model_validate(data)
    except ValidationError as exc:
        where, what = campaign_problems(exc)[0]
        raise CampaignError(f"{name}: {where}: {what}") from None


def read_campaign_file(path: Path) -> Campaign:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CampaignError(f"{path}: cannot read YAML ({exc.__class__.__name__})") from None
    return read_campaign_yaml(text, str(path))


class _BlockDumper(yaml.SafeDumper):
    """Text with line breaks as YAML literal blocks (``|``), as people write campaign files."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)


def campaign_yaml(campaign: Campaign, organisation: str | None = None) -> str:
    """The campaign as a file ``dearmp campaigns load`` (or the staff pages' upload) reads back
    to the same campaign."""
    data = campaign.model_dump(mode="json", exclude={"organisation"})
    if organisation or campaign.organisation:
        data["organisation"] = organisation or campaign.organisation
    return yaml.dump(data, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=100)


def campaign_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
    return [path]


def save_campaign(
    conn: Connection, campaign: Campaign, *, saved_by: str = "campaign file", new: bool = False
) -> int:
    """Add or replace the campaign; returns the number of its version now. Its
    ``organisation`` must exist; without one a new campaign goes to the default organisation and
    a loaded one stays with its own. A definition that differs from the stored one becomes a new
    version, kept in ``campaign_versions`` with ``saved_by``; the same one again changes
    nothing. ``new``: only add it: if the address is taken, even by a campaign saved a moment
    ago in another transaction, CampaignError and nothing changes. Every save (opening one
    included) writes the letter out for the sample supporters first: one that cannot be written
    is refused. Call it in a transaction (the row is locked while the version is numbered)."""
    org = campaign.organisation
    known = sa.select(organisations.c.slug).where(organisations.c.slug == org)
    if org is not None and conn.execute(known).first() is None:
        raise CampaignError(
            f"{campaign.slug}: organisation: there is no organisation {org!r} "
            "(add it with 'dearmp orgs add')"
        )
    check_letter(campaign)
    definition = campaign.model_dump(mode="json", exclude={"organisation"})
    now = datetime.now(UTC)
    stored = conn.execute(
        sa.select(campaigns.c.definition, campaigns.c.version, campaigns.c.organisation)
        .where(campaigns.c.slug == campaign.slug)
        .with_for_update()
    ).first()
    if new and stored is not None:
        raise CampaignError(taken(campaign.slug))
    if (
        stored is not None
        and stored.definition == definition
        and org in (None, stored.organisation)
    ):
        return int(stored.version)
    version = 1 if stored is None else int(stored.version) + 1
    stmt = insert(campaigns).values(
        slug=campaign.slug,
        title=campaign.title,
        definition=definition,
        updated_at=now,
        organisation=org or DEFAULT_ORGANISATION,
        version=version,
    )
    if new:  # two organisations creating the same address at once: the second is refused
        added = conn.execute(
            stmt.on_conflict_do_nothing(index_elements=[campaigns.c.slug]).returning(
                campaigns.c.slug
            )
        ).first()
        if added is None:
            raise CampaignError(taken(campaign.slug))
    else:
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[campaigns.c.slug],
                set_={
                    "title": stmt.excluded.title,
                    "definition": stmt.excluded.definition,
                    "updated_at": stmt.excluded.updated_at,
                    "version": stmt.excluded.version,
                    **({"organisation": stmt.excluded.organisation} if org else {}),
                },
            )
        )
    conn.execute(
        insert(campaign_versions)
        .values(
            campaign=campaign.slug,
            version=version,
            definition=definition,
            saved_at=now,
            saved_by=saved_by,
        )
        .on_conflict_do_nothing()
    )
    return version


def taken(slug: str) -> str:
    """What to say when a new campaign's address is someone else's (whose is never said)."""
    return f"{slug}: slug: there is already a campaign at /c/{slug}; choose another address"


def check_letter(campaign: Campaign) -> None:
    """CampaignError naming the part of the letter that cannot be written for every sample
    supporter within the budget (``shared.letters.template_problem``); a definition stored
    before templates were tried at save is tried again here, when it is saved or opened."""
    letter = campaign.letter
    for part, source in (("subject", letter.subject), ("body", letter.body), ("html", letter.html)):
        problem = template_problem(source, part == "html") if source is not None else None
        if problem:
            raise CampaignError(
                f"{campaign.slug}: letter.{part}: cannot be written for every supporter: {problem}"
            )


_parsed: dict[tuple[str, datetime], Campaign] = {}
_BY_SLUG = sa.select(campaigns.c.definition, campaigns.c.updated_at, campaigns.c.version).where(
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
    return parse_stored(slug, row.updated_at, row.definition, row.version)


class CampaignCache:
    """Campaigns by slug for a hot path, each re-read at most every ``ttl`` seconds (so an edit,
    or closing a campaign, applies that late there): one statement per campaign every few
    seconds instead of one for every event or page. Safe to share between threads."""

    def __init__(self, engine: Engine, ttl: float = 5.0) -> None:
        self.engine = engine
        self._found: TtlCache[str, Campaign | None] = TtlCache(ttl)

    def get(self, slug: str) -> Campaign | None:
        return self._found.get(slug, lambda: self._read(slug))

    def _read(self, slug: str) -> Campaign | None:
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            return get_campaign(conn, slug)


def parsed_as_of(slug: str, updated_at: object) -> Campaign | None:
    """The campaign's version of ``updated_at``, if this process has parsed it already."""
    return _parsed.get((slug, updated_at))  # type: ignore[arg-type]


def open_campaigns(conn: Connection) -> list[Campaign]:
    """Every campaign taking signatures, by title."""
    rows = conn.execute(
        sa.select(
            campaigns.c.slug, campaigns.c.updated_at, campaigns.c.definition, campaigns.c.version
        )
    ).all()
    found = [parse_stored(row.slug, row.updated_at, row.definition, row.version) for row in rows]
    return sorted((c for c in found if c.open), key=lambda c: c.title.casefold())


def parse_stored(
    slug: str, updated_at: datetime, definition: dict[str, Any], version: int | None = None
) -> Campaign:
    """A stored campaign, parsed once per (slug, updated_at) in each process; ``version``, when
    the caller read it, is the number that row carries (it changes only with updated_at)."""
    key = (slug, updated_at)
    campaign = _parsed.get(key)
    if campaign is None:
        if len(_parsed) > 1000:
            _parsed.clear()
        campaign = _parsed[key] = Campaign.model_validate(definition, context={"stored": True})
    if version is not None:
        campaign._version = version
    return campaign


def campaign_version(conn: Connection, slug: str, version: int) -> Campaign | None:
    """The campaign as it was in an earlier version (``campaign_versions``), or None."""
    row = conn.execute(
        sa.select(campaign_versions.c.definition).where(
            campaign_versions.c.campaign == slug, campaign_versions.c.version == version
        )
    ).first()
    if row is None:
        return None
    found = Campaign.model_validate(row.definition, context={"stored": True})
    found._version = version
    return found
