"""marshmallow schemas for officers' input (queue filters, actions): syntax only, as for applicants.

The HTML forms and the JSON API load the same schemas, so both refuse the same things with the
same per-field messages; the domain (domain.casework) decides the rules.
"""

from __future__ import annotations

import re
from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate

from domain.values import REFUSAL_REASONS, RETURN_REASONS, CaseStatus
from web.schemas import SCHEMA_MESSAGES, Text

STAFF_HEX = re.compile(r"^[0-9a-f]{32}$")
CURSOR = re.compile(r"^[A-Za-z0-9_=-]{1,400}$")
STATUSES = tuple(s.value for s in CaseStatus)
ALLOCATION_STATES = (
    "entered",
    "granted",
    "accepted",
    "waitlisted",
    "not_selected",
    "withdrawn",
    "expired",
    "returned_incomplete",
)
AGES = ("0-30", "31-60", "61+")
SORTS = ("oldest", "newest", "reference", "updated")
ACTIONS = ("assign", "request_information", "accept", "return_incomplete", "approve", "refuse")


def _one_of(label: Any, choices: tuple[str, ...]) -> fields.String:
    return fields.String(
        load_default=None,
        validate=validate.OneOf(choices, error=_l("Choose a valid %(field)s", field=label)),
    )


class Assignee(fields.String):
    """`me`, `none` (unassigned) or a staff member's id as 32 hex digits."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if text not in {"me", "none"} and not STAFF_HEX.match(text):
            raise ValidationError(str(_l("Choose an officer")))
        return text


class QueueFilterSchema(Schema):
    """The queue page's query string (and the API's): every field optional."""

    class Meta:
        unknown = EXCLUDE

    intake = fields.String(load_default=None, validate=validate.Length(max=40))
    status = _one_of(_l("status"), STATUSES)
    state = _one_of(_l("allocation state"), ALLOCATION_STATES)
    assigned = Assignee(load_default=None)
    age = _one_of(_l("age"), AGES)
    sort = _one_of(_l("order"), SORTS)
    q = fields.String(load_default=None, validate=validate.Length(max=20))
    after = fields.String(load_default=None, validate=validate.Regexp(CURSOR))
    before = fields.String(load_default=None, validate=validate.Regexp(CURSOR))


class VersionedSchema(Schema):
    """What every officer action carries: the case version it was made from."""

    class Meta:
        unknown = EXCLUDE

    version = fields.Integer(
        required=True,
        strict=False,
        validate=validate.Range(min=1, max=1_000_000, error=_l("This form is damaged: reload")),
        error_messages={
            "required": _l("This form is damaged: reload the page"),
            "invalid": _l("This form is damaged: reload the page"),
        },
    )


class AssignSchema(VersionedSchema):
    assignee = Assignee(
        required=True, error_messages={"required": _l("Choose who the case is assigned to")}
    )


class RequestInformationSchema(VersionedSchema):
    message = Text(label=_l("the request"), max_length=2000, multiline=True)


class NoteSchema(VersionedSchema):
    note = Text(label=_l("the note"), max_length=2000, min_length=0, multiline=True, required=False)


class Reasons(fields.List):
    def __init__(self, allowed: tuple[str, ...]) -> None:
        super().__init__(
            fields.String(validate=validate.OneOf(allowed, error=_l("Choose a listed reason"))),
            required=True,
            validate=validate.Length(min=1, error=_l("Choose at least one reason")),
            error_messages={"required": _l("Choose at least one reason")},
        )


class ReturnSchema(NoteSchema):
    reasons = Reasons(RETURN_REASONS)


class RefuseSchema(NoteSchema):
    reasons = Reasons(REFUSAL_REASONS)


ACTION_SCHEMAS: dict[str, type[Schema]] = {
    "assign": AssignSchema,
    "request_information": RequestInformationSchema,
    "accept": VersionedSchema,
    "return_incomplete": ReturnSchema,
    "approve": NoteSchema,
    "refuse": RefuseSchema,
}


class BulkAssignSchema(Schema):
    """The queue's bulk form: `case` fields of `<case id hex>:<version>` and one assignee."""

    class Meta:
        unknown = EXCLUDE

    case = fields.List(
        fields.String(validate=validate.Regexp(r"^[0-9a-f]{32}:[0-9]{1,7}$")),
        required=True,
        validate=validate.Length(
            min=1, max=1000, error=_l("Choose at least one case (at most 1000 at once)")
        ),
        error_messages={"required": _l("Choose at least one case")},
    )
    assignee = Assignee(
        required=True, error_messages={"required": _l("Choose who the cases are assigned to")}
    )


class ApiBulkAssignSchema(Schema):
    class Meta:
        unknown = RAISE

    error_messages = SCHEMA_MESSAGES

    cases = fields.List(
        fields.Nested(
            Schema.from_dict(
                {
                    "reference": fields.String(required=True, validate=validate.Length(max=20)),
                    "version": fields.Integer(
                        required=True, strict=True, validate=validate.Range(min=1)
                    ),
                },
                name="BulkAssignItem",
            )
        ),
        required=True,
        validate=validate.Length(min=1, max=1000),
    )
    assignee = Assignee(required=True)


class ApiStaffSignInSchema(Schema):
    class Meta:
        unknown = RAISE

    error_messages = SCHEMA_MESSAGES

    email = fields.String(required=True, validate=validate.Length(min=3, max=254))
    password = fields.String(required=True, validate=validate.Length(min=1, max=256))
    code = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{6}$"))


def api_action_schema(action: str) -> type[Schema]:
    """The JSON API's schema of an action: the HTML one, refusing unknown fields."""
    base = ACTION_SCHEMAS[action]

    class Strict(base):  # type: ignore[valid-type,misc]
        class Meta:
            unknown = RAISE

    Strict.__name__ = f"Api{base.__name__}"
    return Strict
