"""The provider's sign: md5 applied 45 times to "do::<session>::<trx_id>::<salt>", compared in constant time."""

from __future__ import annotations

import hashlib

import pytest

from wallet.money.protocol import parse_do_request
from wallet.money.sign import SIGN_ROUNDS, compute_sign, sign_matches

# Computed once outside Python (a shell loop over `md5sum`), pasted here.
VECTORS = [
    ("demo.abc", "1", "local-salt", "cc4370d166a97f3257544e22dac74a48"),
    ("demo.abc", "12345", "local-salt", "6c181eefc89561a61914fe3504995bad"),
    ("p1.token", "6f1c2b8e-4a1d-4c3e-9b7a-0d2f3e4a5b6c", "test-salt", "81ba81c5634b25ae0ba478e819af19fb"),
]


def by_hand(session: str, trx_id: str, salt: str, rounds: int = 45) -> str:
    text = "do::" + session + "::" + trx_id + "::" + salt
    for _ in range(rounds):
        text = hashlib.md5(text.encode("utf-8")).hexdigest()  # noqa: S324 - the provider's algorithm
    return text


@pytest.mark.parametrize(("session", "trx_id", "salt", "expected"), VECTORS)
def test_literal_vectors(session: str, trx_id: str, salt: str, expected: str) -> None:
    assert compute_sign(session, trx_id, salt) == expected
    assert by_hand(session, trx_id, salt) == expected


@pytest.mark.parametrize(
    ("session", "trx_id", "salt"),
    [
        ("p1.abc", "00000000-0000-0000-0000-000000000001", "s"),
        ("игрок.x", "42", "соль"),  # non-ASCII: UTF-8 bytes, as PHP sees them
        ("a" * 256, "9" * 128, "salt::with::colons"),
    ],
)
def test_matches_an_independent_loop(session: str, trx_id: str, salt: str) -> None:
    assert compute_sign(session, trx_id, salt) == by_hand(session, trx_id, salt)


def test_exactly_45_rounds() -> None:
    assert SIGN_ROUNDS == 45
    sign = compute_sign("demo.abc", "1", "local-salt")
    assert sign != by_hand("demo.abc", "1", "local-salt", rounds=44)
    assert sign != by_hand("demo.abc", "1", "local-salt", rounds=46)
    assert sign == sign.lower()
    assert len(sign) == 32


def test_integer_trx_id_is_signed_with_its_decimal_text() -> None:
    sign = "6c181eefc89561a61914fe3504995bad"  # sign of trx_id "12345"
    request = parse_do_request(f'{{"method":"do","session":"demo.abc","trx_id":12345,"sign":"{sign}"}}')
    assert request.trx_id == "12345"
    assert sign_matches(request.envelope.sign, "demo.abc", request.trx_id, "local-salt")


def test_sign_matches_accepts_the_right_sign_in_any_case() -> None:
    sign = VECTORS[0][3]
    assert sign_matches(sign, "demo.abc", "1", "local-salt")
    assert sign_matches(sign.upper(), "demo.abc", "1", "local-salt")


@pytest.mark.parametrize("position", [0, 15, 31])
def test_sign_matches_rejects_a_one_char_change(position: int) -> None:
    sign = VECTORS[0][3]
    changed = sign[:position] + ("0" if sign[position] != "0" else "1") + sign[position + 1 :]
    assert not sign_matches(changed, "demo.abc", "1", "local-salt")


@pytest.mark.parametrize("received", ["", "cc4370d166a97f3257544e22dac74a4", "cc4370d166a97f3257544e22dac74a48a"])
def test_sign_matches_rejects_empty_and_wrong_length(received: str) -> None:
    assert not sign_matches(received, "demo.abc", "1", "local-salt")


@pytest.mark.parametrize(
    ("session", "trx_id", "salt"),
    [("demo.abd", "1", "local-salt"), ("demo.abc", "2", "local-salt"), ("demo.abc", "1", "other-salt")],
)
def test_sign_is_bound_to_session_trx_id_and_salt(session: str, trx_id: str, salt: str) -> None:
    assert not sign_matches(VECTORS[0][3], session, trx_id, salt)


def test_non_ascii_received_sign_is_rejected_not_an_error() -> None:
    assert not sign_matches("é" * 32, "demo.abc", "1", "local-salt")
