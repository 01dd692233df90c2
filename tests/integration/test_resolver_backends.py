"""Must-show 1 (resolver): the remote backend against fake postcodes.io and Members API servers
answering in the real shapes, over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from services.resolver.backends import make_backends
from services.resolver.lookup import Unavailable, resolve
from services.resolver.remote import CachedHttp, MembersApi, PostcodesIoBackend
from tests.fakes import FakeParliament, member


@pytest.fixture
def fake() -> Iterator[FakeParliament]:
    server = FakeParliament(
        postcodes={
            "BR8 7RE": ("Sevenoaks", "E14001465"),
            "ZZ1 1ZZ": "invalid",
            "SW1A 9ZZ": ("terminated", 2015, 7),
            "GY1 1AA": (None, "L99999999"),
            "LS2 9JT": ("Leeds Central and Headingley", "E14001330"),
            "NE2 1AA": ("Newcastle upon Tyne East and Wallsend", "E14001390"),
        },
        seats={
            "Sevenoaks": member(4001, "Laura Example"),
            "Leeds Central and Headingley": None,  # vacant
            "Newcastle upon Tyne East and Wallsend": member(4002, "Mary Quiet"),
        },
        contacts={
            4001: [
                {
                    "type": "Constituency office",
                    "isPreferred": False,
                    "email": "office@example.org",
                    "line1": "1 High St",
                    "postcode": "TN13 1AA",
                    "phone": "01732 000000",
                },
                {
                    "type": "Parliamentary office",
                    "isPreferred": True,
                    "email": "laura.example.mp@parliament.uk",
                    "line1": "House of Commons",
                    "postcode": "SW1A 0AA",
                    "phone": "020 7219 0000",
                },
            ],
            4002: [
                {
                    "type": "Parliamentary office",
                    "isPreferred": True,
                    "email": None,
                    "line1": "House of Commons",
                    "postcode": "SW1A 0AA",
                }
            ],
        },
    ).start()
    yield server
    server.stop()


@pytest.fixture
def backend(fake: FakeParliament, engine) -> PostcodesIoBackend:
    http = CachedHttp(engine, requests.Session())
    http.timeout = (1, 1)
    return PostcodesIoBackend(http, fake.url, MembersApi(http, fake.url))


def test_found_gives_the_mp_and_their_preferred_email(backend) -> None:
    answer = resolve("br87re", None, [backend])
    assert answer.status == "resolved"
    assert answer.constituency and answer.constituency.code == "E14001465"
    assert answer.target and answer.target.email == "laura.example.mp@parliament.uk"
    assert answer.target.name == "Laura Example" and answer.target.party == "Example Party"


@pytest.mark.parametrize(
    ("postcode", "reason"),
    [
        ("ZZ1 1ZZ", "invalid_postcode"),
        ("SW1A 9ZZ", "terminated_postcode"),
        ("NE2 1AA", "no_contact"),
    ],
)
def test_final_answers(backend, postcode: str, reason: str) -> None:
    answer = resolve(postcode, None, [backend])
    assert (answer.status, answer.reason) == ("unresolvable", reason)


def test_crown_dependency_with_a_null_constituency(backend) -> None:
    # resolve() already knows GY has no MP; the backend must say so from the API's answer too.
    answer = backend.lookup("GY1 1AA")
    assert answer is not None and answer.reason == "no_westminster_mp"


def test_vacant_seat_means_try_again(backend) -> None:
    answer = resolve("LS2 9JT", None, [backend])
    assert (answer.status, answer.reason) == ("retry", "vacant_seat")
    assert answer.constituency and answer.constituency.name == "Leeds Central and Headingley"


def test_not_found_falls_through_to_unknown(backend) -> None:
    assert resolve("AB1 2DE", None, [backend]).reason == "unknown_postcode"


def test_answers_are_cached(backend, fake) -> None:
    resolve("BR8 7RE", None, [backend])
    before = len(fake.requests)
    assert resolve("BR8 7RE", None, [backend]).status == "resolved"
    assert len(fake.requests) == before


@pytest.mark.parametrize(
    ("status", "headers", "retry_after"),
    [
        (500, {}, None),
        (503, {}, None),
        (429, {"Retry-After": "7"}, 7.0),
    ],
)
def test_server_errors_and_rate_limits_mean_retry(
    backend, fake, status, headers, retry_after
) -> None:
    fake.fail(status, times=1, headers=headers)
    with pytest.raises(Unavailable) as caught:
        resolve("BR8 7RE", None, [backend])
    assert caught.value.retry_after == retry_after
    assert resolve("BR8 7RE", None, [backend]).status == "resolved"  # and it recovers


def test_timeouts_mean_retry(backend, fake) -> None:
    fake.delay = 1.5
    with pytest.raises(Unavailable):
        resolve("BR8 7RE", None, [backend])


def test_local_first_then_remote(fake, engine) -> None:
    backends = make_backends(
        "local,postcodes_io", engine, postcodes_io_url=fake.url, members_api_url=fake.url
    )
    local = resolve("GU11 1AA", None, backends)  # in the demo data: no HTTP needed
    assert local.target and local.target.name == "Alex Demo" and fake.requests == []
    remote = resolve("BR8 7RE", None, backends)  # the demo has BR8 7RE too: still local
    assert remote.target and remote.target.name == "Sam Sample"
    assert resolve("LS2 9JT", None, backends).reason == "vacant_seat"  # not local: asked remotely
    assert fake.requests
