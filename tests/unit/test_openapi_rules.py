"""The patterns the OpenAPI document states are the rules the schemas apply (issue 11)."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote, unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from web.openapi import PERCENT_ENCODED_UTF8
from web.schemas import (
    PHONE,
    REFUSED_CATEGORIES,
    ContactSchema,
    NamesSchema,
    name_pattern,
    text_pattern,
)
from web.sections import JobOfferSchema


def test_the_text_pattern_refuses_exactly_the_refused_characters_of_the_bmp():
    optional = re.compile(text_pattern(required=False))
    for code in range(0x10000):
        ch = chr(code)
        category = unicodedata.category(ch)
        if category == "Cs":
            continue  # no text holds one; see _refused_class
        assert bool(optional.fullmatch(ch)) is (category not in REFUSED_CATEGORIES), hex(code)


def test_a_required_text_needs_a_character_that_is_not_a_space():
    required = re.compile(text_pattern())
    assert required.fullmatch(" a ")
    assert not required.fullmatch("   ")
    assert not required.fullmatch("")


def test_line_breaks_only_where_a_text_may_have_several_lines():
    assert re.fullmatch(text_pattern(multiline=True), "first\r\nsecond")
    assert not re.fullmatch(text_pattern(), "first\nsecond")


def contact(phone: str) -> dict[str, str]:
    return {"email": "a@example.com", "phone": phone, "country_of_residence": "PH"}


@st.composite
def phone_numbers(draw: st.DrawFn) -> str:
    """Numbers as the pattern describes them: an optional +, 7 to 15 digits, separators."""
    separator = st.text(alphabet=" ().-", max_size=1)
    digits = draw(st.lists(st.sampled_from("0123456789"), min_size=7, max_size=15))
    plus = draw(st.sampled_from(["", "+"]))
    return plus + draw(separator) + "".join(d + draw(separator) for d in digits)


@settings(max_examples=300, database=None)
@given(phone_numbers().filter(lambda v: len(v.strip()) <= 25))
def test_every_phone_number_the_pattern_allows_is_accepted(phone):
    assert re.fullmatch(PHONE, phone.strip())
    ContactSchema().load(contact(phone))


@pytest.mark.parametrize(
    "phone", ["123456", "+63 917 123 4567 8901 23", "12+3456789", "tel 1234567"]
)
def test_a_phone_number_the_pattern_refuses_is_refused(phone):
    assert not re.fullmatch(PHONE, phone)
    with pytest.raises(ValidationError):
        ContactSchema().load(contact(phone))


@settings(max_examples=200, database=None)
@given(st.from_regex(name_pattern(), fullmatch=True).filter(lambda v: any(c.isalpha() for c in v)))
def test_every_name_the_pattern_allows_with_a_letter_is_accepted(name):
    if len(name.strip()) <= 100:
        NamesSchema().load({"family_name": name})


def test_an_employer_phone_may_carry_an_extension_but_needs_seven_digits():
    base = {
        "employer_name": "Ng",
        "province": "ON",
        "job_start": "2027-01-04",
        "hours_per_week": 35,
    }
    JobOfferSchema().load({**base, "employer_phone": "416 555 0100 ext. 12"})
    with pytest.raises(ValidationError):
        JobOfferSchema().load({**base, "employer_phone": "ext. 123456"})


@settings(max_examples=300, database=None)
@given(st.text(min_size=1))
def test_every_percent_encoded_name_matches_the_filename_pattern(name):
    assert re.fullmatch(PERCENT_ENCODED_UTF8, quote(name, safe=""))


@settings(max_examples=300, database=None)
@given(st.from_regex(PERCENT_ENCODED_UTF8, fullmatch=True))
def test_every_value_the_filename_pattern_allows_decodes_as_utf8(value):
    assert unquote(value, errors="strict")
