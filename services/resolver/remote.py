"""The remote backend: a postcodes.io-compatible server for the constituency, then the UK
Parliament Members API for the current MP and their preferred email address.

``requests`` with one Session, connect/read timeouts, and answers cached in the database with a
TTL (``resolver_cache``). Timeouts, 5xx and 429 raise ``BackendUnavailable`` (with the server's
``Retry-After`` when it gave one): the signature waits and is retried, never dropped. A 404 that
means "not found" is a final answer.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import requests
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Engine

from services.resolver.lookup import BackendUnavailable, Resolution
from services.resolver.models import resolver_cache
from shared.messages import Constituency, Target

POSTCODE_TTL = timedelta(days=7)
MEMBER_TTL = timedelta(hours=12)
TIMEOUT = (3.05, 10)  # connect, read


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            return None


class CachedHttp:
    """GET JSON with a database cache. Only final answers (200 and 404) are cached."""

    def __init__(self, engine: Engine | None, session: requests.Session | None = None):
        self.engine = engine
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", "DearMP/0.1")
        self.timeout: tuple[float, float] = TIMEOUT

    def get(self, url: str, ttl: timedelta, *, fresh: bool = False) -> tuple[int, Any]:
        """``fresh``: ask the server even if a cached answer has not expired."""
        now = datetime.now(UTC)
        if self.engine is not None and not fresh:
            with self.engine.connect() as conn:
                row = conn.execute(
                    sa.select(resolver_cache.c.status, resolver_cache.c.body).where(
                        resolver_cache.c.url == url, resolver_cache.c.expires_at > now
                    )
                ).first()
            if row is not None:
                return row.status, row.body
        try:
            response = self.session.get(url, timeout=self.timeout)
        except requests.RequestException as exc:
            raise BackendUnavailable(f"{type(exc).__name__} from {_host(url)}") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise BackendUnavailable(
                f"{response.status_code} from {_host(url)}", _retry_after(response)
            )
        try:
            body = response.json()
        except (json.JSONDecodeError, ValueError):
            raise BackendUnavailable(f"unreadable answer from {_host(url)}") from None
        if response.status_code in (200, 404) and self.engine is not None:
            stmt = insert(resolver_cache).values(
                url=url, status=response.status_code, body=body, expires_at=now + ttl
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=[resolver_cache.c.url],
                set_={
                    "status": stmt.excluded.status,
                    "body": stmt.excluded.body,
                    "expires_at": stmt.excluded.expires_at,
                },
            )
            with self.engine.begin() as conn:
                conn.execute(stmt)
        return response.status_code, body


def _host(url: str) -> str:
    return url.split("/")[2] if "://" in url else url


class MembersApi:
    def __init__(self, http: CachedHttp, base_url: str):
        self.http = http
        self.base = base_url.rstrip("/")

    def current_mp(self, constituency_name: str) -> dict[str, Any] | None:
        """The current member for a constituency (by name), or None for a vacant seat.
        Raises LookupError when the constituency itself is not found. A vacancy is always
        checked with the server, never taken from the cache: the by-election may be over."""
        member = self._current_mp(constituency_name, fresh=False)
        return member if member is not None else self._current_mp(constituency_name, fresh=True)

    def _current_mp(self, constituency_name: str, *, fresh: bool) -> dict[str, Any] | None:
        url = f"{self.base}/api/Location/Constituency/Search?searchText={quote(constituency_name)}"
        status, body = self.http.get(url, MEMBER_TTL, fresh=fresh)
        items = (body or {}).get("items", []) if status == 200 else []
        for item in items:
            value = item.get("value") or {}
            if str(value.get("name", "")).casefold() == constituency_name.casefold():
                member = ((value.get("currentRepresentation") or {}).get("member") or {}).get(
                    "value"
                )
                return member or None
        raise LookupError(constituency_name)

    def preferred_email(self, member_id: int) -> str | None:
        status, body = self.http.get(f"{self.base}/api/Members/{member_id}/Contact", MEMBER_TTL)
        contacts = (
            [c for c in ((body or {}).get("value") or []) if c.get("email")]
            if status == 200
            else []
        )
        if not contacts:
            return None
        contacts.sort(
            key=lambda c: (not c.get("isPreferred"), c.get("type") != "Parliamentary office")
        )
        return str(contacts[0]["email"]).strip()


class PostcodesIoBackend:
    """postcodes.io for the constituency; the Members API for the MP."""

    def __init__(self, http: CachedHttp, postcodes_url: str, members: MembersApi):
        self.http = http
        self.base = postcodes_url.rstrip("/")
        self.members = members

    def lookup(self, postcode: str) -> Resolution | None:
        status, body = self.http.get(f"{self.base}/postcodes/{quote(postcode)}", POSTCODE_TTL)
        if status == 404:
            error = str((body or {}).get("error", ""))
            if (body or {}).get("terminated"):
                return Resolution("unresolvable", postcode, reason="terminated_postcode")
            if error.lower().startswith("invalid postcode"):
                return Resolution("unresolvable", postcode, reason="invalid_postcode")
            return None  # not found here: another backend may know it
        result = (body or {}).get("result") or {}
        codes = result.get("codes") or {}
        name = result.get("parliamentary_constituency_2024") or result.get(
            "parliamentary_constituency"
        )
        code = codes.get("parliamentary_constituency_2024") or codes.get(
            "parliamentary_constituency"
        )
        if not name or not code:
            return Resolution("unresolvable", postcode, reason="no_westminster_mp")
        constituency = Constituency(code=str(code), name=str(name))
        try:
            member = self.members.current_mp(constituency.name)
        except LookupError:
            return None
        if member is None:
            return Resolution("retry", postcode, reason="vacant_seat", constituency=constituency)
        email = self.members.preferred_email(int(member["id"]))
        party = (member.get("latestParty") or {}).get("name")
        member_name = str(member.get("nameDisplayAs") or member.get("nameAddressAs") or "")
        if not email:  # the member's name stays: the supporter can post the letter
            return Resolution(
                "unresolvable",
                postcode,
                reason="no_contact",
                constituency=constituency,
                target=Target(name=member_name, party=party, kind="mp") if member_name else None,
            )
        return Resolution(
            "resolved",
            postcode,
            constituency=constituency,
            target=Target(
                name=str(member.get("nameDisplayAs") or member.get("nameAddressAs")),
                email=email,
                party=party,
                kind="mp",
            ),
        )
