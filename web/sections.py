"""Stage two's sections: what each asks (questions, hints) and what it accepts (schemas)."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError, fields, validates_schema

from web.countries import COUNTRY_CODES
from web.forms import Field, display
from web.schemas import (
    LANGUAGE_LEVELS,
    StepSchema,
    Text,
    WholeNumber,
    choice_field,
    digits_pattern,
    number_field,
    phone_field,
)

SECTION_TITLES: dict[str, Any] = {
    "work_history": _l("Your home care work"),
    "language_test": _l("Your language test"),
    "education": _l("Your education"),
    "job_offer": _l("Your job offer"),
}
SECTION_INTROS: dict[str, Any] = {
    "work_history": _l("Tell us about your most recent full-time home care job."),
    "language_test": _l("Give the result of your English or French test, as on the test report."),
    "education": _l("Give your highest education credential, as on the document you upload."),
    "job_offer": _l("Tell us about the employer offering you a home care job in Canada."),
}

LANGUAGE_TESTS = ("celpip", "ielts", "pte", "tef", "tcf")
PROVINCES = ("AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "SK", "YT")
TEST_LABELS: dict[str, Any] = {
    "celpip": _l("CELPIP-General (English)"),
    "ielts": _l("IELTS General Training (English)"),
    "pte": _l("PTE Core (English)"),
    "tef": _l("TEF Canada (French)"),
    "tcf": _l("TCF Canada (French)"),
}
PROVINCE_LABELS: dict[str, Any] = {
    "AB": _l("Alberta"),
    "BC": _l("British Columbia"),
    "MB": _l("Manitoba"),
    "NB": _l("New Brunswick"),
    "NL": _l("Newfoundland and Labrador"),
    "NS": _l("Nova Scotia"),
    "NT": _l("Northwest Territories"),
    "NU": _l("Nunavut"),
    "ON": _l("Ontario"),
    "PE": _l("Prince Edward Island"),
    "SK": _l("Saskatchewan"),
    "YT": _l("Yukon"),
}

DATE_HINT = _l("For example, 2023-09-01")

SECTION_FIELDS: dict[str, tuple[Field, ...]] = {
    "work_history": (
        Field("employer_name", _l("Employer's name"), hint=_l("The family or agency you work for")),
        Field("job_title", _l("Job title"), hint=_l("For example, home child care provider")),
        Field("start_date", _l("Start date"), kind="date", hint=DATE_HINT, width="short"),
        Field(
            "end_date",
            _l("End date"),
            kind="date",
            hint=_l("Leave empty if you still work there"),
            width="short",
        ),
        Field(
            "hours_per_week",
            _l("Paid hours a week"),
            kind="number",
            hint=_l("A number from 1 to 80"),
            width="short",
        ),
        Field(
            "duties",
            _l("Your main duties"),
            kind="textarea",
            hint=_l("In a few sentences: who you care for and what you do"),
        ),
    ),
    "language_test": (
        Field("test", _l("Which test you took"), kind="radios", choices="language_tests"),
        Field("test_date", _l("Test date"), kind="date", hint=DATE_HINT, width="short"),
        Field(
            "registration_number",
            _l("Test registration or report number"),
            hint=_l("As printed on your test report"),
            width="short",
        ),
        Field(
            "level",
            _l("Your lowest ability score (CLB or NCLC)"),
            kind="select",
            choices="language_levels",
        ),
    ),
    "education": (
        Field("credential", _l("Name of the diploma, degree or certificate")),
        Field("institution", _l("School, college or university")),
        Field("country", _l("Country where you studied"), kind="select", choices="countries"),
        Field(
            "year_completed",
            _l("Year completed"),
            kind="number",
            hint=_l("For example, 2012"),
            width="short",
        ),
        Field(
            "assessment_number",
            _l("Educational credential assessment (ECA) number, if you have one"),
            hint=_l("Leave empty if your credential is Canadian or not assessed yet"),
            width="short",
        ),
    ),
    "job_offer": (
        Field("employer_name", _l("Employer's name")),
        Field(
            "employer_phone",
            _l("Employer's phone number"),
            kind="tel",
            hint=_l("Include the area code, for example +1 416 555 0100"),
            width="short",
        ),
        Field(
            "province", _l("Province or territory of the job"), kind="select", choices="provinces"
        ),
        Field("job_start", _l("Expected start date"), kind="date", hint=DATE_HINT, width="short"),
        Field(
            "hours_per_week",
            _l("Paid hours a week offered"),
            kind="number",
            hint=_l("At least 30"),
            width="short",
        ),
    ),
}


def section_choices(name: str) -> list[tuple[str, str]]:
    if name == "language_tests":
        return [(key, str(TEST_LABELS[key])) for key in LANGUAGE_TESTS]
    if name == "provinces":
        return [(key, str(PROVINCE_LABELS[key])) for key in PROVINCES]
    raise KeyError(name)


def section_display(field: Field, value: Any, language: str) -> str:
    """A stage-two answer as a person reads it (receipts, the officer's case page)."""
    if value is not None and field.choices in {"language_tests", "provinces"}:
        return dict(section_choices(field.choices)).get(str(value), str(value))
    return display(field, value, language)


def _date(label: Any, *, required: bool = True, past: bool = False) -> fields.Date:
    message = _l("Enter %(field)s as a real date, for example 2023-09-01", field=label)
    optional: dict[str, Any] = {} if required else {"allow_none": True, "load_default": None}
    return fields.Date(
        required=required,
        format="%Y-%m-%d",
        metadata={"description": "Today or earlier (the server's date)."} if past else {},
        **optional,
        error_messages={
            "required": _l("Enter %(field)s", field=label),
            "null": _l("Enter %(field)s", field=label),
            "invalid": message,
            "format": message,
        },
    )


def _not_future(value: date | None, name: str) -> None:
    if value is not None and value > date.today():
        raise ValidationError({name: [str(_l("The date must be today or in the past"))]})


EMPLOYER = _l("the employer's name")
JOB_TITLE = _l("your job title")
START = _l("the start date")
END = _l("the end date")
HOURS = _l("the paid hours a week")
DUTIES = _l("your main duties")


class WorkHistorySchema(StepSchema):
    employer_name = Text(label=EMPLOYER, max_length=200)
    job_title = Text(label=JOB_TITLE, max_length=100)
    start_date = _date(START, past=True)
    end_date = _date(END, required=False, past=True)
    hours_per_week = number_field(HOURS, 1, 80)
    duties = Text(label=DUTIES, max_length=2000, multiline=True)

    @validates_schema(skip_on_field_errors=False)
    def _dates(self, data: dict[str, Any], **_: Any) -> None:
        _not_future(data.get("start_date"), "start_date")
        _not_future(data.get("end_date"), "end_date")
        start, end = data.get("start_date"), data.get("end_date")
        if start and end and end < start:
            raise ValidationError(
                {"end_date": [str(_l("The end date must be after the start date"))]}
            )


TEST = _l("the test you took")
TEST_DATE = _l("the test date")
REGISTRATION = _l("the test registration number")
LEVEL = _l("your lowest ability score")


class LanguageTestSchema(StepSchema):
    test = choice_field(TEST, LANGUAGE_TESTS)
    test_date = _date(TEST_DATE, past=True)
    registration_number = Text(label=REGISTRATION, max_length=40)
    level = WholeNumber(
        required=True,
        strict=False,
        validate=lambda v: v in LANGUAGE_LEVELS,
        error_messages={
            "required": _l("Select %(field)s", field=LEVEL),
            "null": _l("Select %(field)s", field=LEVEL),
            "invalid": _l("Select %(field)s from the list", field=LEVEL),
            "validator_failed": _l("Select %(field)s from the list", field=LEVEL),
        },
    )

    @validates_schema(skip_on_field_errors=False)
    def _date_past(self, data: dict[str, Any], **_: Any) -> None:
        _not_future(data.get("test_date"), "test_date")


CREDENTIAL = _l("the name of the credential")
INSTITUTION = _l("the school")
STUDY_COUNTRY = _l("the country where you studied")
YEAR = _l("the year completed")
ECA = _l("the assessment number")


class EducationSchema(StepSchema):
    credential = Text(label=CREDENTIAL, max_length=200)
    institution = Text(label=INSTITUTION, max_length=200)
    country = choice_field(STUDY_COUNTRY, sorted(COUNTRY_CODES))
    year_completed = number_field(YEAR, 1950, date.today().year)
    assessment_number = Text(
        label=ECA, max_length=40, min_length=0, required=False, load_default=""
    )


OFFER_EMPLOYER = _l("the employer's name")
OFFER_PHONE = _l("the employer's phone number")
PROVINCE = _l("the province or territory")
JOB_START = _l("the expected start date")
OFFER_HOURS = _l("the paid hours a week offered")


class JobOfferSchema(StepSchema):
    employer_name = Text(label=OFFER_EMPLOYER, max_length=200)
    # Any text with 7 to 15 digits: an employer's number may carry an extension ("ext. 12").
    employer_phone = phone_field(
        OFFER_PHONE, _l("Enter a phone number with 7 to 15 digits"), digits_pattern(7, 15)
    )
    province = choice_field(PROVINCE, PROVINCES)
    job_start = _date(JOB_START)
    hours_per_week = number_field(OFFER_HOURS, 30, 80)


SECTION_SCHEMAS: dict[str, type[StepSchema]] = {
    "work_history": WorkHistorySchema,
    "language_test": LanguageTestSchema,
    "education": EducationSchema,
    "job_offer": JobOfferSchema,
}


def clean_section(data: dict[str, Any]) -> dict[str, Any]:
    """Answers as stored in events: dates as ISO text, no value for a blank optional date."""
    return {
        key: value.isoformat() if isinstance(value, date) else value for key, value in data.items()
    }
