"""marshmallow schemas for every applicant input: syntax only; the domain decides the rest.

Messages are lazy translations, resolved in the request's language, and each names its field
the way the form labels it, so an error summary can link to the field.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Iterable
from datetime import date
from functools import cache
from typing import Any, TypeVar

from flask_babel import lazy_gettext as _l
from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates,
    validates_schema,
)

from domain.identity import parse_reference
from web.countries import COUNTRY_CODES

TSchema = TypeVar("TSchema", bound=Schema)

IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
# A phone number as typed: an optional + first, then 7 to 15 digits with spaces, brackets, dots
# or hyphens between them (checked after surrounding space is stripped; 25 characters at most).
PHONE = r"^\+?[ ().-]*(?:[0-9][ ().-]*){7,15}$"
PASSPORT_AS_TYPED = r"^[ -]*(?:[A-Za-z0-9][ -]*){5,20}$"
PASSPORT = re.compile(r"^[A-Z0-9]{5,20}$")
EDUCATION = (
    "none",
    "secondary",
    "post_secondary_short",
    "post_secondary_1yr",
    "post_secondary_2yr",
)
LANGUAGE_LEVELS = tuple(range(0, 11))  # 0: no test result yet; 10: CLB/NCLC 10 or higher


# Refused anywhere in a text: control characters (Cc), invisible formatting such as bidirectional
# overrides and zero-width joiners (Cf), surrogates (Cs) and private-use characters (Co).
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co"})


def _has_control_characters(value: str) -> bool:
    return any(unicodedata.category(ch) in REFUSED_CATEGORIES for ch in value)


TEXT_RULE = (
    "Surrounding space is removed. Refused: control characters (Unicode Cc; line breaks only "
    "where the text may have several lines), format characters (Cf: bidirectional overrides, "
    "zero-width characters, tags), surrogates (Cs) and private-use characters (Co), also those "
    "beyond U+FFFF, which the pattern leaves out."
)


def _class_of(codes: Iterable[int]) -> str:
    """Ascending BMP code points as the inside of a regex class, runs as ranges (\\uXXXX-\\uXXXX)."""
    ranges: list[tuple[int, int]] = []
    for code in codes:
        if ranges and code == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in ranges)


@cache
def _refused_class(multiline: bool) -> str:
    """The refused characters as the inside of a regex class, for the OpenAPI document: ranges
    from this Python's own Unicode tables, so the document states the rule applied, as \\uXXXX
    escapes (ECMA 262, Python and Rust alike). Only those of the Basic Multilingual Plane: no
    escape beyond it means the same in all three (the rest, private-use planes 15 and 16 and a
    few rare format characters such as tags, are named in TEXT_RULE)."""
    allowed = {"\n", "\r"} if multiline else set()
    # Surrogates are left out: no Unicode text holds one (a regex engine working on code points
    # refuses the range), though a JSON body can spell one as \\ud800, which Text refuses.
    codes = [
        c
        for c in range(sys.maxunicode + 1)
        if unicodedata.category(chr(c)) in REFUSED_CATEGORIES - {"Cs"} and chr(c) not in allowed
    ]
    return _class_of(code for code in codes if code <= 0xFFFF)


def text_pattern(*, multiline: bool = False, required: bool = True) -> str:
    """What Text accepts, as a JSON Schema pattern: no refused character and, when an answer is
    required, at least one that is not a space (surrounding space is stripped first)."""
    refused = _refused_class(multiline)
    if not required:
        return f"^[^{refused}]*$"
    return f"^[^{refused}]*[^{refused}\\s][^{refused}]*$"


class Text(fields.String):
    """A string with surrounding space stripped and no control or invisible formatting characters.

    Invisible characters (bidirectional overrides, zero-width joiners, NUL) can make a stored
    name read differently from what an officer sees, so they are refused, not cleaned.
    """

    def __init__(
        self,
        *,
        label: Any,
        max_length: int,
        min_length: int = 1,
        multiline: bool = False,
        **kwargs: Any,
    ):
        self.label = label
        self.multiline = multiline
        messages = {
            "required": _l("Enter %(field)s", field=label),
            "null": _l("Enter %(field)s", field=label),
            "invalid": _l("Enter %(field)s as text", field=label),
            "control": _l("Remove the characters that are not allowed from %(field)s", field=label),
        }
        validators = [
            validate.Length(
                min=min_length,
                max=max_length,
                error=_l(
                    "Enter %(field)s in %(max)s characters or fewer", field=label, max=max_length
                )
                if min_length <= 1
                else _l(
                    "Enter %(field)s in %(min)s to %(max)s characters",
                    field=label,
                    min=min_length,
                    max=max_length,
                ),
            )
        ]
        required = kwargs.pop("required", True)
        given = dict(kwargs.pop("metadata", {}))
        metadata = {
            "pattern": text_pattern(multiline=multiline, required=min_length >= 1),
            **given,
            "description": " ".join(filter(None, [given.get("description"), TEXT_RULE])),
        }
        super().__init__(
            required=required,
            validate=validators + list(kwargs.pop("validate", [])),
            error_messages=messages,
            metadata=metadata,
            **kwargs,
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if _has_control_characters(
            text.replace("\r", "").replace("\n", "") if self.multiline else text
        ):
            raise self.make_error("control")
        if not text and self.required:
            raise self.make_error("required")
        return text


def _name_check(label: Any) -> validate.Validator:
    def check(value: str) -> None:
        if value and not all(ch.isalpha() or ch in " '’-." for ch in value):
            raise ValidationError(
                str(
                    _l(
                        "Use only letters, spaces, hyphens and apostrophes in %(field)s",
                        field=label,
                    )
                )
            )
        if value and not any(ch.isalpha() for ch in value):
            raise ValidationError(str(_l("Enter %(field)s with letters", field=label)))

    return check  # type: ignore[return-value]


class WholeNumber(fields.Integer):
    """An integer that also comes as a string from a form, and refuses 5.5 (not truncated to 5)."""

    def _validated(self, value: Any) -> int:
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


def _number(label: Any, low: int, high: int) -> fields.Integer:
    return WholeNumber(
        required=True,
        strict=False,
        validate=validate.Range(
            min=low,
            max=high,
            error=_l(
                "Enter %(field)s as a number from %(min)s to %(max)s",
                field=label,
                min=low,
                max=high,
            ),
        ),
        error_messages={
            "required": _l("Enter %(field)s", field=label),
            "null": _l("Enter %(field)s", field=label),
            "invalid": _l("Enter %(field)s as a whole number", field=label),
            "too_large": _l(
                "Enter %(field)s as a number from %(min)s to %(max)s",
                field=label,
                min=low,
                max=high,
            ),
        },
    )


def _choice(label: Any, choices: Any) -> fields.String:
    return fields.String(
        required=True,
        validate=validate.OneOf(choices, error=_l("Select %(field)s from the list", field=label)),
        error_messages={
            "required": _l("Select %(field)s", field=label),
            "null": _l("Select %(field)s", field=label),
            "invalid": _l("Select %(field)s from the list", field=label),
        },
    )


# For the stage-two sections (web/sections.py), which ask the same kinds of questions.
number_field = _number
choice_field = _choice


# marshmallow's own schema-level messages, made translatable (same English wording).
SCHEMA_MESSAGES: dict[str, Any] = {
    "unknown": _l("Unknown field."),
    "type": _l("Invalid input type."),
}


class StepSchema(Schema):
    """Base of the step schemas: unknown fields are refused, so a typo never passes silently."""

    class Meta:
        unknown = RAISE

    error_messages = SCHEMA_MESSAGES


FAMILY_NAME = _l("your family name")
GIVEN_NAMES = _l("your given names")
DATE_OF_BIRTH = _l("your date of birth")
PASSPORT_NUMBER = _l("your passport number")
PASSPORT_COUNTRY = _l("the country that issued your passport")
EMAIL = _l("your email address")
PHONE_NUMBER = _l("your phone number")
RESIDENCE = _l("the country where you live")
LANGUAGE_LEVEL = _l("your language test level")
CARE_MONTHS = _l("your months of care work")
EDUCATION_LABEL = _l("your education")
CONSENT = _l("the declaration")


@cache
def name_pattern() -> str:
    """What a name may hold, as a pattern: the letters of the Basic Multilingual Plane (this
    Python's Unicode tables, categories L*) and ' ’ - . and space. Stricter than the rule itself
    beyond U+FFFF (no escape there means the same in ECMA 262, Python and Rust)."""
    codes = [
        c
        for c in range(0x10000)
        if unicodedata.category(chr(c)).startswith("L") or chr(c) in " '’-."
    ]
    return "^[" + _class_of(codes) + "]*$"


NAME_RULE = (
    "Letters of any script, spaces, hyphens, apostrophes (' or \u2019) and full stops, with at "
    "least one letter (Unicode categories L*)."
)


class NamesSchema(StepSchema):
    family_name = Text(
        label=FAMILY_NAME,
        max_length=100,
        validate=[_name_check(FAMILY_NAME)],
        metadata={"description": NAME_RULE, "pattern": name_pattern()},
    )
    given_names = Text(
        label=GIVEN_NAMES,
        max_length=100,
        min_length=0,
        required=False,
        load_default="",
        validate=[_name_check(GIVEN_NAMES)],
        metadata={"description": NAME_RULE, "pattern": name_pattern()},
    )


class AboutYouSchema(NamesSchema):
    """The first step: who you are. Its identity fields fix the case for good."""

    date_of_birth = fields.Date(
        required=True,
        format="%Y-%m-%d",
        metadata={"description": "18 to 100 years before today (the server's date)."},
        error_messages={
            "required": _l("Enter %(field)s", field=DATE_OF_BIRTH),
            "null": _l("Enter %(field)s", field=DATE_OF_BIRTH),
            "invalid": _l(
                "Enter %(field)s as a real date, for example 1985-04-27", field=DATE_OF_BIRTH
            ),
            "format": _l(
                "Enter %(field)s as a real date, for example 1985-04-27", field=DATE_OF_BIRTH
            ),
        },
    )
    passport_number = Text(
        label=PASSPORT_NUMBER,
        max_length=30,
        metadata={
            "pattern": PASSPORT_AS_TYPED,
            "description": "5 to 20 letters and digits; spaces and hyphens are ignored.",
        },
    )
    passport_country = _choice(PASSPORT_COUNTRY, sorted(COUNTRY_CODES))

    @validates("date_of_birth")
    def _adult(self, value: date, **_: Any) -> None:
        today = date.today()
        age = today.year - value.year - ((today.month, today.day) < (value.month, value.day))
        if age < 18 or age > 100:
            raise ValidationError(str(_l("You must be between 18 and 100 years old")))

    @validates("passport_number")
    def _passport(self, value: str, **_: Any) -> None:
        if not PASSPORT.match(normalise_passport(value)):
            raise ValidationError(
                str(_l("Your passport number must be 5 to 20 letters and digits"))
            )


class ApiRegisterSchema(AboutYouSchema):
    """The API's registration: the about-you step and, for an intake with reserved places, the
    pool the person declares (README, "Pools"); `general` if none is given."""

    pool = fields.String(
        load_default="general",
        validate=validate.Regexp(r"^[a-z][a-z0-9_]{0,39}$", error=str(_l("Give a pool's name"))),
        error_messages={"invalid": _l("Give a pool's name")},
    )


def phone_field(label: Any, message: Any, pattern: str = PHONE) -> Text:
    return Text(
        label=label,
        max_length=25,
        validate=[validate.Regexp(pattern, error=message)],
        metadata={"pattern": pattern},
    )


def digits_pattern(low: int, high: int) -> str:
    """Any text (no refused character) holding `low` to `high` of the digits 0-9."""
    other = f"[^{_refused_class(False)}0-9]*"
    return f"^{other}(?:[0-9]{other}){{{low},{high}}}$"


def normalise_passport(value: str) -> str:
    return "".join(ch for ch in value.upper() if ch not in " -")


class ContactSchema(StepSchema):
    email = Text(
        label=EMAIL,
        max_length=254,
        validate=[
            validate.Email(
                error=_l("Enter %(field)s in the right format, like name@example.com", field=EMAIL)
            )
        ],
        metadata={"format": "email"},
    )
    phone = phone_field(
        PHONE_NUMBER, _l("Enter a phone number with 7 to 15 digits, like +63 917 123 4567")
    )
    country_of_residence = _choice(RESIDENCE, sorted(COUNTRY_CODES))


class Confirmation(fields.Boolean):
    """A box that must be ticked: anything but a true value gets the one message."""

    def __init__(self, message: Any) -> None:
        super().__init__(
            required=True,
            metadata={"enum": [True]},
            truthy={True, "true", "yes", "on", "1"},
            falsy={False, "false", "no", "off", "0"},
            error_messages={
                "required": message,
                "null": message,
                "invalid": message,
                "unticked": message,
            },
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if super()._deserialize(value, attr, data, **kwargs) is not True:
            raise self.make_error("unticked")
        return True


REASON = _l("your reason")


def _reason() -> Text:
    return Text(
        label=REASON, max_length=500, min_length=0, multiline=True, required=False, load_default=""
    )


class EligibilitySchema(StepSchema):
    language_level = _number(LANGUAGE_LEVEL, 0, 10)
    care_months = _number(CARE_MONTHS, 0, 36)
    education = _choice(EDUCATION_LABEL, EDUCATION)
    consent = Confirmation(_l("Confirm the declaration to continue"))


STEP_SCHEMAS: dict[str, type[StepSchema]] = {
    "about_you": AboutYouSchema,
    "contact": ContactSchema,
    "eligibility": EligibilitySchema,
}


class EnvelopeSchema(Schema):
    """What every state-changing form carries besides its answers."""

    class Meta:
        unknown = EXCLUDE

    idempotency_key = fields.String(
        required=True,
        validate=validate.Regexp(
            IDEMPOTENCY_KEY, error=_l("This form is damaged: reload the page")
        ),
        error_messages={"required": _l("This form is damaged: reload the page")},
    )
    version = fields.Integer(
        required=False,
        strict=False,
        validate=validate.Range(
            min=1, max=1_000_000, error=_l("This form is damaged: reload the page")
        ),
        error_messages={"invalid": _l("This form is damaged: reload the page")},
    )


class SignInSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    reference = Text(label=_l("your reference"), max_length=20)
    access_code = Text(label=_l("your access code"), max_length=20)


REFERENCE_EXAMPLE = "7K2M-9QXD-R"  # a well-formed reference (its check symbol fits)
TOKEN = re.compile(r"^[0-9a-f]{32}\.[0-9a-f]{32}\.[0-9a-f]{32}$")


class RecoverySchema(Schema):
    """ "Forgot your access code?": the reference, or the passport details, and the date of
    birth. With a reference, the passport fields are not looked at."""

    class Meta:
        unknown = EXCLUDE

    reference = Text(
        label=_l("your reference"), max_length=20, min_length=0, required=False, load_default=""
    )
    passport_number = Text(
        label=PASSPORT_NUMBER, max_length=30, min_length=0, required=False, load_default=""
    )
    passport_country = fields.String(
        required=False,
        load_default="",
        validate=validate.OneOf(
            ["", *sorted(COUNTRY_CODES)],
            error=_l("Select %(field)s from the list", field=PASSPORT_COUNTRY),
        ),
        error_messages={"invalid": _l("Select %(field)s from the list", field=PASSPORT_COUNTRY)},
    )
    date_of_birth = AboutYouSchema._declared_fields["date_of_birth"]

    @validates_schema
    def _reference_or_passport(self, data: dict[str, Any], **_: Any) -> None:
        reference = data.get("reference", "")
        number, country = data.get("passport_number", ""), data.get("passport_country", "")
        errors: dict[str, list[str]] = {}
        if reference:
            if parse_reference(reference) is None:
                errors["reference"] = [
                    str(
                        _l(
                            "Enter your reference as it was shown to you, for example %(example)s",
                            example=REFERENCE_EXAMPLE,
                        )
                    )
                ]
        elif not number and not country:
            errors["reference"] = [
                str(_l("Enter your reference, or your passport number and country"))
            ]
        else:
            if not number:
                errors["passport_number"] = [str(_l("Enter %(field)s", field=PASSPORT_NUMBER))]
            elif not PASSPORT.match(normalise_passport(number)):
                errors["passport_number"] = [
                    str(_l("Your passport number must be 5 to 20 letters and digits"))
                ]
            if not country:
                errors["passport_country"] = [str(_l("Select %(field)s", field=PASSPORT_COUNTRY))]
        if errors:
            raise ValidationError(errors)


class ApiRecoverySchema(RecoverySchema):
    """Asking for a recovery link over the API: unknown fields are refused."""

    class Meta:
        unknown = RAISE

    error_messages = SCHEMA_MESSAGES


class ApiRecoveryResetSchema(Schema):
    class Meta:
        unknown = RAISE

    error_messages = SCHEMA_MESSAGES

    token = fields.String(
        required=True,
        validate=validate.Regexp(TOKEN, error=_l("Give the token of the link, as it was sent")),
        error_messages={
            "required": _l("Give the token of the link, as it was sent"),
            "null": _l("Give the token of the link, as it was sent"),
            "invalid": _l("Give the token of the link, as it was sent"),
        },
    )


class WithdrawSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    reason = _reason()
    confirm = Confirmation(_l("Confirm that you want to withdraw"))


class AnswerSchema(Schema):
    """The applicant's answer to an officer's request for information."""

    class Meta:
        unknown = EXCLUDE

    answer = Text(label=_l("your answer"), max_length=5000, multiline=True)


# The JSON API wraps answers with the version they were made from.
class ApiStepSchema(Schema):
    class Meta:
        unknown = RAISE

    error_messages = SCHEMA_MESSAGES

    version = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(
            min=1, max=1_000_000, error=_l("version must be a positive whole number")
        ),
        error_messages={
            "required": _l("Give the version of the case you are changing"),
            "null": _l("Give the version of the case you are changing"),
            "invalid": _l("version must be a positive whole number"),
        },
    )
    answers = fields.Dict(
        required=True,
        error_messages={
            "required": _l("Give the answers of the step"),
            "null": _l("Give the answers of the step"),
            "invalid": _l("answers must be an object"),
        },
    )


class ApiVersionSchema(Schema):
    class Meta:
        unknown = RAISE

    error_messages = SCHEMA_MESSAGES

    version = ApiStepSchema._declared_fields["version"]


class ApiWithdrawSchema(ApiVersionSchema):
    reason = _reason()


class ApiAnswerSchema(ApiVersionSchema):
    request_id = fields.String(
        required=True,
        validate=validate.Regexp(r"^r[0-9]{1,4}$", error=_l("request_id is like r1")),
    )
    answer = AnswerSchema._declared_fields["answer"]


class ApiSignInSchema(SignInSchema):
    """Sign-in over the API: unknown fields are refused rather than ignored."""

    class Meta:
        unknown = RAISE

    error_messages = SCHEMA_MESSAGES


@cache
def shared(schema_class: type[TSchema]) -> TSchema:
    """One instance of a schema class for every request: building one costs more than a load.

    Safe to share: a marshmallow schema changes itself only while it is being built.
    """
    return schema_class()


def flatten(messages: Any) -> dict[str, list[str]]:
    """marshmallow's errors as {field: [message, ...]} strings in the request's language."""
    out: dict[str, list[str]] = {}
    for field, value in dict(messages).items():
        if isinstance(value, dict):
            for inner, inner_messages in flatten(value).items():
                out[f"{field}.{inner}"] = inner_messages
        else:
            out[field] = [str(m) for m in (value if isinstance(value, list) else [value])]
    return out


def clean_answers(step: str, data: dict[str, Any]) -> dict[str, Any]:
    """Answers as stored in events: JSON-ready values, passport numbers normalised."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, date):
            out[key] = value.isoformat()
        elif key == "passport_number":
            out[key] = normalise_passport(value)
        else:
            out[key] = value
    return out
