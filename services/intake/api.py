"""The JSON API under /api/v1 (partner sites, and the first path through the system)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from services.intake.deps import Engine
from services.intake.signing import record_signature
from shared import postcodes
from shared.campaigns import get_campaign
from shared.messages import Supporter
from shared.metrics import SIGNATURES

router = APIRouter(prefix="/api/v1", tags=["signatures"])

SingleLine = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\r\n]*$")]


class SignatureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    first_name: SingleLine
    last_name: SingleLine
    email: EmailStr
    postcode: Annotated[str, Field(min_length=2, max_length=16)]
    address_lines: Annotated[
        list[Annotated[str, Field(max_length=200, pattern=r"^[^\r\n]*$")]],
        Field(min_length=1, max_length=4),
    ]
    comment: Annotated[str, Field(max_length=2000)] = ""
    opt_in: bool = False
    consent: bool = Field(description="The supporter agrees to the terms and privacy notice")

    @field_validator("postcode")
    @classmethod
    def _postcode(cls, raw: str) -> str:
        code = postcodes.normalise(raw)
        if not postcodes.is_valid(code):
            raise ValueError("Enter a real UK postcode, like SW1A 1AA")
        return code

    @field_validator("consent")
    @classmethod
    def _consent(cls, value: bool) -> bool:
        if not value:
            raise ValueError("You must agree to the terms and privacy notice to sign")
        return value


class Accepted(BaseModel):
    status: str = "pending"
    message: str = "Thank you. Check your email and click the link to confirm your signature."


@router.post("/campaigns/{slug}/signatures", status_code=202, response_model=Accepted)
def sign(slug: str, body: SignatureIn, engine: Engine, request: Request) -> Accepted:
    """Sign a campaign. The answer is the same whether or not this email has signed before."""
    supporter = Supporter(
        first_name=body.first_name.strip(),
        last_name=body.last_name.strip(),
        email=str(body.email),
        postcode=body.postcode,
        address_lines=[line.strip() for line in body.address_lines if line.strip()],
        comment=body.comment.strip(),
        opt_in=body.opt_in,
    )
    with engine.begin() as conn:
        campaign = get_campaign(conn, slug)
        if campaign is None:
            raise HTTPException(404, "No campaign with that name")
        if not campaign.open:
            raise HTTPException(409, "This campaign has closed and is no longer taking signatures")
        if record_signature(conn, slug, supporter) is not None:
            SIGNATURES.labels(slug).inc()
    return Accepted()
