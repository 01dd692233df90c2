"""The JSON API under /api/v1, for partner sites. It mirrors the web form, with the same checks
and the same messages; every error is a 4xx with a message."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.intake import sources
from services.intake.content import default_letter
from services.intake.counts import campaign_counts
from services.intake.db import IntakeDb
from services.intake.deps import Engine, Settings, client_ip
from services.intake.drafts import public_campaign, public_campaign_async
from services.intake.forms import COMMENT_MAX, LETTER_MAX
from services.intake.helprequests import submit_help_request
from services.intake.signing import Outcome, submit_signature
from shared.campaigns import Campaign
from shared.config import Settings as SettingsModel
from shared.states import SignatureStatus

router = APIRouter(prefix="/api/v1", tags=["campaigns"])

Line = Annotated[str, Field(max_length=300)]
# Where the supporter came from (services/intake/sources.py): a short plain tag, or left out.
Tag = Annotated[
    str | None,
    Field(
        max_length=sources.MAX,
        pattern=sources.PATTERN,
        description="A tag on the campaign link the supporter came from (letters, digits, "
        "spaces and . _ - + : / only), as ?source= or utm_* on the campaign page; shown in the "
        "campaign dashboard's Sources.",
    ),
]


class SignatureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    first_name: Line
    last_name: Line
    email: Line
    address_line1: Line
    address_line2: Line = ""
    town: Line
    postcode: Annotated[str, Field(max_length=20)]
    comment: Annotated[str, Field(max_length=COMMENT_MAX * 2)] = ""
    letter: Annotated[
        str,
        Field(
            max_length=LETTER_MAX * 2,
            description=(
                "Only for a campaign whose letter is editable: the supporter's own wording of the "
                f"letter's main text (up to {LETTER_MAX} characters; the greeting, comment, name "
                "and address are added around it). Empty or left out: the campaign's own words. "
                "Control characters are removed and line breaks made \\n. Refused with 422 "
                '("This campaign\'s letter cannot be edited") for any other campaign.'
            ),
        ),
    ] = ""
    opt_in: bool = Field(False, description="Keep me updated about this campaign")
    language: Literal["en", "cy", "fr"] = Field(
        "en",
        description=(
            "The language the supporter used: every email to them (confirmation, reminder, copy, "
            "notices, update footers) is written in it. The letter keeps the campaign's language."
        ),
    )
    consent: bool = Field(description="The supporter agrees to the terms and privacy notice")
    source: Tag = None
    utm_source: Tag = None
    utm_medium: Tag = None
    utm_campaign: Tag = None


class Accepted(BaseModel):
    status: str = SignatureStatus.PENDING.value
    message: str = (
        "Thank you. Check your email and press the button in it to confirm your signature."
    )


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    detail: str
    errors: list[FieldError] = []


class CampaignOut(BaseModel):
    slug: str
    title: str
    open: bool
    goal: int
    target_kind: str
    signatures: int
    letter_editable: bool = Field(description="Supporters may send their own wording (`letter`)")
    default_letter: str | None = Field(
        None, description="The wording supporters may change, as the form shows it first"
    )


class ConstituencyCount(BaseModel):
    code: str
    name: str | None
    count: int


class CountsOut(BaseModel):
    slug: str
    total: int
    goal: int
    by_constituency: list[ConstituencyCount]
    as_of: str


class HelpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Line = ""
    email: Line
    message: Annotated[str, Field(max_length=6000)]


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem},
    404: {"model": Problem},
    409: {"model": Problem},
    422: {"model": Problem},
    429: {"model": Problem},
}
# Bodies over 64 KiB are refused before they are read (services/intake/limits.py).
POST_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    413: {"model": Problem, "description": "The request body is over 64 KiB"},
}


NO_CAMPAIGN = "There is no campaign with that name"
CLOSED = "This campaign has closed and is no longer taking signatures"


def open_campaign(engine: Engine, slug: str, *, must_be_open: bool = True) -> Campaign:
    """The campaign, 404 when there is none or it is a draft never opened (the same answer),
    409 when it must be open and is not."""
    with engine.connect() as conn:
        campaign = public_campaign(conn, slug)
    if campaign is None:
        raise HTTPException(404, NO_CAMPAIGN)
    if must_be_open and not campaign.open:
        raise HTTPException(409, CLOSED)
    return campaign


def _too_many() -> JSONResponse:
    return JSONResponse(
        {"detail": "Too many attempts; wait a few minutes and try again", "errors": []},
        status_code=429,
        headers={"Retry-After": "600"},
    )


def _problem(status: int, detail: str, errors: dict[str, str] | None = None) -> JSONResponse:
    body = {
        "detail": detail,
        "errors": [{"field": k, "message": v} for k, v in (errors or {}).items()],
    }
    return JSONResponse(body, status_code=status)


@router.get("/campaigns/{slug}", response_model=CampaignOut, responses=ERRORS)
def campaign(slug: str, engine: Engine) -> CampaignOut:
    found = open_campaign(engine, slug, must_be_open=False)
    default = default_letter(found)
    return CampaignOut(
        slug=found.slug,
        title=found.title,
        open=found.open,
        goal=found.goal,
        target_kind=found.target.kind,
        signatures=campaign_counts(engine, slug).total,
        letter_editable=default is not None,
        default_letter=default,
    )


@router.get("/campaigns/{slug}/counts", response_model=CountsOut, responses=ERRORS)
def counts(slug: str, engine: Engine) -> CountsOut:
    found = open_campaign(engine, slug, must_be_open=False)
    c = campaign_counts(engine, slug)
    return CountsOut(
        slug=slug,
        total=c.total,
        goal=found.goal,
        by_constituency=[ConstituencyCount.model_validate(x) for x in c.by_constituency],
        as_of=c.as_of.isoformat(),
    )


@router.post(
    "/campaigns/{slug}/signatures", status_code=202, response_model=Accepted, responses=POST_ERRORS
)
async def sign(slug: str, body: SignatureIn, request: Request):  # type: ignore[no-untyped-def]
    """Sign a campaign. The answer is the same whether or not this email has signed before."""
    # The hottest endpoint reads app state itself: injected dependencies cost a tenth of it.
    db: IntakeDb = request.app.state.db
    settings: SettingsModel = request.app.state.settings
    found = await public_campaign_async(db, slug)
    if found is None:
        raise HTTPException(404, NO_CAMPAIGN)
    if not found.open:
        raise HTTPException(409, CLOSED)
    result = await submit_signature(
        db, settings, found, body.model_dump(), client_ip(request), language=body.language
    )
    if result.outcome is Outcome.INVALID:
        return _problem(422, "Please correct the highlighted fields", result.errors)
    if result.outcome is Outcome.RATE_LIMITED:
        return _too_many()
    return JSONResponse(_ACCEPTED, status_code=202)


_ACCEPTED = Accepted().model_dump()


@router.post(
    "/campaigns/{slug}/help-requests",
    status_code=202,
    response_model=Accepted,
    responses=POST_ERRORS,
)
def help_request(slug: str, body: HelpIn, engine: Engine, settings: Settings, request: Request):  # type: ignore[no-untyped-def]
    """ "Can't sign? Tell us": a message for the campaign's staff."""
    found = open_campaign(engine, slug, must_be_open=False)
    errors = submit_help_request(
        engine, settings, found.slug, body.model_dump(), client_ip(request)
    )
    if errors is None:
        return _too_many()
    if errors:
        return _problem(422, "Please correct the highlighted fields", errors)
    return Accepted(status="received", message="Thank you. We will reply by email.")
