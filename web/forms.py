"""What each step's form shows: questions, hints and choices, in the applicant's language."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l

from web.countries import country_names
from web.schemas import EDUCATION, LANGUAGE_LEVELS


@dataclass(frozen=True)
class Field:
    """One question on a form."""

    name: str
    label: Any
    kind: str = "text"  # text, email, tel, date, select, radios, checkbox, number
    hint: Any = ""
    autocomplete: str = "off"
    choices: str = ""  # name of a choice list, resolved in the request's language
    width: str = "full"
    locked: bool = False  # shown but not editable after registration


STEP_TITLES: dict[str, Any] = {
    "about_you": _l("About you"),
    "contact": _l("How we contact you"),
    "eligibility": _l("Your eligibility"),
}

EDUCATION_LABELS: dict[str, Any] = {
    "none": _l("No secondary (high) school diploma"),
    "secondary": _l("Secondary (high) school diploma"),
    "post_secondary_short": _l("Post-secondary certificate of less than one year"),
    "post_secondary_1yr": _l("Post-secondary diploma or degree of one year or more"),
    "post_secondary_2yr": _l("Post-secondary diploma or degree of two years or more"),
}


def language_level_label(level: int) -> str:
    if level == 0:
        return str(_l("No test result yet"))
    if level == 10:
        return str(_l("CLB/NCLC 10 or higher"))
    return str(_l("CLB/NCLC %(level)s", level=level))


STEP_FIELDS: dict[str, tuple[Field, ...]] = {
    "about_you": (
        Field(
            "family_name",
            _l("Family name (surname)"),
            hint=_l("As it appears in your passport"),
            autocomplete="family-name",
        ),
        Field(
            "given_names",
            _l("Given names"),
            hint=_l("As they appear in your passport. Leave empty if you have none."),
            autocomplete="given-name",
        ),
        Field(
            "date_of_birth",
            _l("Date of birth"),
            kind="date",
            hint=_l("For example, 27 April 1985"),  # words: the picker shows its own format
            autocomplete="bday",
            width="short",
            locked=True,
        ),
        Field("passport_number", _l("Passport number"), width="short", locked=True),
        Field(
            "passport_country",
            _l("Country that issued your passport"),
            kind="select",
            choices="countries",
            locked=True,
        ),
    ),
    "contact": (
        Field(
            "email",
            _l("Email address"),
            kind="email",
            autocomplete="email",
            hint=_l("We will send your invitation and deadlines here"),
        ),
        Field(
            "phone",
            _l("Phone number"),
            kind="tel",
            autocomplete="tel",
            hint=_l("Include the country code, for example +63 917 123 4567"),
            width="short",
        ),
        Field(
            "country_of_residence",
            _l("Country where you live now"),
            kind="select",
            choices="countries",
            autocomplete="country",
        ),
    ),
    "eligibility": (
        Field(
            "language_level",
            _l("Your English or French test result"),
            kind="select",
            choices="language_levels",
            hint=_l(
                "Your lowest ability score on an approved test (CLB for English, NCLC for French)"
            ),
        ),
        Field(
            "care_months",
            _l("Months of full-time paid home care work in the last 36 months"),
            kind="number",
            width="short",
            hint=_l("A number from 0 to 36"),
        ),
        Field("education", _l("Your highest education"), kind="radios", choices="education"),
        Field(
            "consent",
            _l(
                "I declare that the information I have given is true and complete, "
                "and I agree that it is used to process my application."
            ),
            kind="checkbox",
        ),
    ),
}


def choices(name: str, language: str) -> list[tuple[str, str]]:
    if name == "countries":
        return list(country_names(language))
    if name == "education":
        return [(key, str(EDUCATION_LABELS[key])) for key in EDUCATION]
    if name == "language_levels":
        return [(str(level), language_level_label(level)) for level in LANGUAGE_LEVELS]
    raise KeyError(name)


def display(field: Field, value: Any, language: str) -> str:
    """An answer as a person reads it on the review page and the receipt."""
    if value is None or value == "":
        return ""
    if field.kind == "checkbox":
        return str(_l("Yes")) if value else str(_l("No"))
    if field.choices:
        return dict(choices(field.choices, language)).get(str(value), str(value))
    return str(value)
