"""References, access codes and identity-derived case ids."""

from __future__ import annotations

from datetime import date
from uuid import uuid4

from hypothesis import given
from hypothesis import strategies as st

from domain.identity import (
    ALPHABET,
    access_code_for,
    access_code_matches,
    case_id_for,
    hash_access_code,
    new_reference,
    parse_reference,
)
from domain.values import Identity

KEY = b"k" * 32


def test_new_references_parse_back_to_themselves():
    for _ in range(200):
        reference = new_reference()
        assert parse_reference(reference) == reference


def test_reference_typed_loosely_is_still_recognised():
    reference = new_reference()
    loose = reference.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert parse_reference(loose) == reference


@given(st.data())
def test_any_single_symbol_error_in_a_reference_is_caught(data):
    reference = new_reference().replace("-", "")
    position = data.draw(st.integers(0, len(reference) - 1))
    wrong = data.draw(st.sampled_from([c for c in ALPHABET if c != reference[position]]))
    typo = reference[:position] + wrong + reference[position + 1 :]
    assert parse_reference(typo) is None


def test_garbage_is_not_a_reference():
    for text in ["", "ABCD", "ABCD-EFGH-IJ", "ABCD-EFGH-!", "x" * 200, "ABCD-EFGH-U"]:
        assert parse_reference(text) is None


def test_same_person_gets_the_same_case_id_whatever_the_spacing_of_the_passport_number():
    intake = uuid4()
    one = Identity("ab 123-456", "ph", date(1985, 4, 27))
    two = Identity("AB123456", "PH", date(1985, 4, 27))
    assert case_id_for(KEY, intake, one) == case_id_for(KEY, intake, two)


def test_case_id_depends_on_intake_key_and_every_identity_fact():
    intake = uuid4()
    base = Identity("AB123456", "PH", date(1985, 4, 27))
    ids = {
        case_id_for(KEY, intake, base),
        case_id_for(KEY, uuid4(), base),
        case_id_for(b"other" * 8, intake, base),
        case_id_for(KEY, intake, Identity("AB123457", "PH", date(1985, 4, 27))),
        case_id_for(KEY, intake, Identity("AB123456", "IN", date(1985, 4, 27))),
        case_id_for(KEY, intake, Identity("AB123456", "PH", date(1985, 4, 28))),
    }
    assert len(ids) == 6


def test_access_code_is_reproducible_only_with_the_same_registration_key():
    case_id = uuid4()
    code = access_code_for(KEY, case_id, "key-1")
    assert code == access_code_for(KEY, case_id, "key-1")
    assert code != access_code_for(KEY, case_id, "key-2")
    assert len(code.replace("-", "")) == 12


def test_access_code_hash_accepts_the_code_typed_loosely_and_nothing_else():
    case_id = uuid4()
    code = access_code_for(KEY, case_id, "key-1")
    stored = hash_access_code(KEY, case_id, code)
    assert code not in stored
    assert access_code_matches(KEY, case_id, code.lower().replace("-", ""), stored)
    assert not access_code_matches(KEY, case_id, access_code_for(KEY, case_id, "k2"), stored)
    assert not access_code_matches(KEY, uuid4(), code, stored)
