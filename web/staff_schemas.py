"""marshmallow schemas for the staff forms (sign-in, enrolment, adding a member): syntax only."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from domain.values import StaffRole
from web.schemas import SCHEMA_MESSAGES, Text

PASSWORD_MIN = 12
PASSWORD_MAX = 256
STAFF_EMAIL = _l("your email address")
MEMBER_EMAIL = _l("their email address")
MEMBER_NAME = _l("their name")


class StaffForm(Schema):
    """Base of staff forms: fields not in the schema (the CSRF token) are ignored."""

    class Meta:
        unknown = EXCLUDE

    error_messages = SCHEMA_MESSAGES


def _password(missing: Any) -> fields.String:
    """Taken as typed: a password is never stripped or changed."""
    return fields.String(
        required=True,
        validate=validate.Length(min=1, max=PASSWORD_MAX, error=missing),
        error_messages={"required": missing, "null": missing, "invalid": missing},
    )


class CodeField(fields.String):
    """A 6-digit code, spaces allowed as people type them ("123 456")."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        return "".join(text.split())


def code_field() -> fields.String:
    message = _l("Enter the 6-digit code from your authenticator app")
    return CodeField(
        required=True,
        validate=validate.Regexp(r"^[0-9]{6}$", error=message),
        error_messages={"required": message, "null": message, "invalid": message},
    )


class StaffSignInSchema(StaffForm):
    email = Text(label=STAFF_EMAIL, max_length=254)
    password = _password(_l("Enter your password"))
    code = code_field()


class EnrolSchema(StaffForm):
    password = _password(_l("Enter a new password"))
    password_confirm = _password(_l("Enter the new password again"))
    code = code_field()

    @validates_schema
    def _strong_and_same(self, data: dict[str, Any], **_: Any) -> None:
        password = data.get("password", "")
        if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
            raise ValidationError(
                str(
                    _l(
                        "Enter a password of %(min)s to %(max)s characters",
                        min=PASSWORD_MIN,
                        max=PASSWORD_MAX,
                    )
                ),
                field_name="password",
            )
        if len(set(password)) == 1:
            raise ValidationError(
                str(_l("Enter a password that is not one character repeated")),
                field_name="password",
            )
        if "password_confirm" in data and data["password_confirm"] != password:
            raise ValidationError(
                str(_l("Enter the same password twice")), field_name="password_confirm"
            )


class AddStaffSchema(StaffForm):
    email = Text(
        label=MEMBER_EMAIL,
        max_length=254,
        validate=[
            validate.Email(
                error=_l(
                    "Enter %(field)s in the right format, like name@example.org", field=MEMBER_EMAIL
                )
            )
        ],
    )
    name = Text(label=MEMBER_NAME, max_length=100, min_length=0, required=False, load_default="")
    role = fields.String(
        required=True,
        validate=validate.OneOf(
            [r.value for r in StaffRole], error=_l("Select a role: officer, auditor or admin")
        ),
        error_messages={
            "required": _l("Select a role: officer, auditor or admin"),
            "null": _l("Select a role: officer, auditor or admin"),
            "invalid": _l("Select a role: officer, auditor or admin"),
        },
    )
