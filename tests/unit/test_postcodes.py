from __future__ import annotations

import pytest

from shared import postcodes


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("sw1a1aa", "SW1A 1AA"),
        (" SW1A-1AA ", "SW1A 1AA"),
        ("gu11 1aa", "GU11 1AA"),
        ("m11ae", "M1 1AE"),
        ("bfpo57", "BFPO 57"),
        ("GIR0AA", "GIR 0AA"),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert postcodes.normalise(raw) == expected
    assert postcodes.is_valid(expected)


@pytest.mark.parametrize("raw", ["", "SW1A", "12345", "SW1A 1CA", "QQ1 1AA X", "SW1A 1AI"])
def test_invalid(raw: str) -> None:
    assert not postcodes.is_valid(postcodes.normalise(raw))


@pytest.mark.parametrize("code", ["JE2 4WE", "GY1 1AA", "IM1 1AA", "BFPO 57"])
def test_no_westminster_mp(code: str) -> None:
    assert postcodes.no_westminster_mp(code)
    assert postcodes.no_westminster_mp("SW1A 1AA") is None


def test_tokens_are_single_purpose_and_expire() -> None:
    import time

    from shared.tokens import InvalidToken, make_token, read_token

    token = make_token("secret-key-for-tests", "confirm", "abc")
    assert read_token("secret-key-for-tests", "confirm", token) == "abc"
    with pytest.raises(InvalidToken) as wrong:
        read_token("secret-key-for-tests", "unsubscribe", token)
    assert wrong.value.reason == "invalid"
    time.sleep(1.1)
    with pytest.raises(InvalidToken) as old:
        read_token("secret-key-for-tests", "confirm", token, max_age=0)
    assert old.value.reason == "expired"
