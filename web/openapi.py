"""The OpenAPI 3 document of the JSON API, generated from the marshmallow schemas by apispec."""

from __future__ import annotations

from functools import cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from web.officer_schemas import (
    ACTIONS,
    AGES,
    ALLOCATION_STATES,
    SORTS,
    STATUSES,
    ApiBulkAssignSchema,
    ApiStaffSignInSchema,
    api_action_schema,
)
from web.schemas import (
    AboutYouSchema,
    ApiAnswerSchema,
    ApiRecoveryResetSchema,
    ApiRecoverySchema,
    ApiRegisterSchema,
    ApiSignInSchema,
    ApiVersionSchema,
    ApiWithdrawSchema,
    ContactSchema,
    EligibilitySchema,
    NamesSchema,
)

IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "description": "16-64 characters [A-Za-z0-9_-]; new for each change, the same when retrying "
    "it. A retry returns the first answer and writes nothing.",
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,64}$"},
}
ERROR = {
    "description": "Invalid input: `errors` names each field with its messages",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
CONFLICT = {
    "description": "Stale version, duplicate person, or the case can no longer change",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
UNAUTHORISED = {"description": "Not signed in"}
OUTCOME = {
    "description": "Recorded (or replayed: header Idempotent-Replayed: true)",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Outcome"}}},
}


def _json(ref: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": ref}}}}


def _step_body(step_schema: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["version", "answers"],
                    "additionalProperties": False,
                    "properties": {
                        "version": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
                        "answers": {"$ref": f"#/components/schemas/{step_schema}"},
                    },
                }
            }
        },
    }


@cache
def build_spec() -> dict[str, Any]:
    spec = APISpec(
        title="carepath applicant API",
        version="1.0.0",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={
            "description": "Register in an intake, save each step, submit, see "
            "status, withdraw. Sign-in sets a session cookie."
        },
    )
    for name, schema in (
        ("AboutYou", AboutYouSchema),
        ("Register", ApiRegisterSchema),
        ("Names", NamesSchema),
        ("Contact", ContactSchema),
        ("Eligibility", EligibilitySchema),
        ("SignIn", ApiSignInSchema),
        ("Version", ApiVersionSchema),
        ("Withdraw", ApiWithdrawSchema),
        ("Answer", ApiAnswerSchema),
    ):
        spec.components.schema(name, schema=schema)
    spec.components.schema(
        "Error",
        {
            "type": "object",
            "properties": {
                "error": {"type": "string"},
                "code": {"type": "string"},
                "errors": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
                "current_version": {"type": "integer"},
            },
        },
    )
    spec.components.schema(
        "Outcome",
        {
            "type": "object",
            "properties": {"command": {"type": "string"}, "version": {"type": "integer"}},
        },
    )
    hex_or_null = {"type": "string", "nullable": True, "pattern": "^[0-9a-f]{64}$"}
    spec.components.schema(
        "Intake",
        {
            "type": "object",
            "properties": {
                **{k: {"type": "string"} for k in ("code", "name", "stream", "policy", "status")},
                "capacity": {"type": "integer"},
                **{
                    k: {"type": "string", "format": "date-time", "nullable": True}
                    for k in ("opens_at", "closes_at")
                },
                "time_zone": {
                    "type": "string",
                    "description": "The IANA zone the intake's times are shown in on its pages "
                    "and in its emails; times in the API are ISO 8601 with an offset.",
                    "example": "America/Toronto",
                },
                "pools": {
                    "type": "array",
                    "description": "Reserved pools in name order, then the general pool "
                    "(capacity less the reserved places); label: who qualifies, as the "
                    "register form asks it (null for general).",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,39}$"},
                            "places": {"type": "integer", "minimum": 1},
                            "label": {"type": "string", "nullable": True},
                        },
                    },
                },
                "unused_reserved": {"type": "string", "enum": ["kept", "to_general"]},
                "draw": {
                    "type": "object",
                    "nullable": True,
                    "description": "A lottery's published inputs (README, \"The lottery, "
                    'precisely"), each null until it exists: mode, commitment and beacon round '
                    "at opening; the entries and their digest at the close; the draw's inputs "
                    "(secret revealed, beacon signature and randomness, or the operator's "
                    "value); then the seed, combined seed and fairness figures. A legacy "
                    "lottery reveals its seed at the close. null for first come.",
                    "properties": {
                        "mode": {
                            "type": "string",
                            "nullable": True,
                            "enum": ["beacon", "operator", "legacy", None],
                        },
                        "seed_commitment": hex_or_null,
                        "beacon": {
                            "type": "object",
                            "nullable": True,
                            "properties": {
                                "name": {"type": "string"},
                                "chain_hash": {"type": "string"},
                                "public_key": {"type": "string"},
                                "scheme": {"type": "string"},
                                "genesis_time": {"type": "integer"},
                                "period": {"type": "integer"},
                                "round_fixed_at_opening": {"type": "integer"},
                                "round": {"type": "integer"},
                                "round_time": {"type": "string", "format": "date-time"},
                                "delay_seconds": {"type": "integer"},
                            },
                        },
                        "entries": {"type": "integer", "nullable": True},
                        "entries_digest": hex_or_null,
                        "inputs": {
                            "type": "object",
                            "nullable": True,
                            "properties": {
                                "secret": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                                "source": {"type": "string", "enum": ["beacon", "operator"]},
                                "round": {"type": "integer"},
                                "signature": {"type": "string"},
                                "randomness": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                            },
                        },
                        "seed": hex_or_null,
                        "combined_seed": hex_or_null,
                        "fairness": {"type": "object", "nullable": True},
                        "read_model_unavailable": {"type": "boolean"},
                    },
                },
            },
        },
    )
    spec.components.schema(
        "Case",
        {
            "type": "object",
            "properties": {
                "reference": {"type": "string"},
                "status": {"type": "string"},
                "pool": {"type": "string", "description": "The pool declared at registration"},
                "version": {"type": "integer"},
                "next_step": {"type": "string"},
                "answers": {"type": "object"},
            },
        },
    )

    spec.path(
        "/intakes",
        operations={
            "get": {
                "summary": "Open intakes",
                "responses": {"200": {"description": "Open intakes"}},
            }
        },
    )
    spec.path(
        "/intakes/{code}",
        parameters=[{"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}],
        operations={
            "get": {
                "summary": "One intake",
                "responses": {
                    "200": {
                        "description": "The intake",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Intake"}}
                        },
                    },
                    "404": {"description": "No such intake"},
                },
            }
        },
    )
    spec.path(
        "/intakes/{code}/registrations",
        parameters=[{"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}],
        operations={
            "post": {
                "summary": "Register (the about-you step); signs in and returns the access code once",
                "parameters": [IDEMPOTENCY],
                "requestBody": _json("#/components/schemas/Register"),
                "responses": {
                    "201": {"description": "Registered"},
                    "409": CONFLICT,
                    "422": ERROR,
                    "429": {"description": "Too many registrations from this address"},
                },
            }
        },
    )
    spec.path(
        "/session",
        operations={
            "post": {
                "summary": "Sign in with reference and access code",
                "requestBody": _json("#/components/schemas/SignIn"),
                "responses": {
                    "200": {"description": "Signed in; the case"},
                    "401": {"description": "No match"},
                    "422": ERROR,
                },
            },
            "delete": {"summary": "Sign out", "responses": {"204": {"description": "Signed out"}}},
        },
    )
    spec.components.schema("Recovery", schema=ApiRecoverySchema)
    spec.components.schema("RecoveryReset", schema=ApiRecoveryResetSchema)
    spec.path(
        "/recovery",
        operations={
            "post": {
                "summary": "Forgot the access code: email a link to set a new one",
                "description": "Give `reference`, or `passport_number` and `passport_country`, "
                "and `date_of_birth` (with a reference the passport fields are not looked at). "
                "The answer is the same whether or not the details match an application; on a "
                "match with an email address on file, a link is sent that works for a short "
                "time (30 minutes by default), once. Rate-limited per address and per case.",
                "requestBody": _json("#/components/schemas/Recovery"),
                "responses": {
                    "202": {
                        "description": "Accepted: the same `message` whatever the details",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"message": {"type": "string"}},
                                }
                            }
                        },
                    },
                    "422": ERROR,
                    "429": {"description": "Too many requests from this address or for this case"},
                },
            }
        },
    )
    spec.path(
        "/recovery/reset",
        operations={
            "post": {
                "summary": "Set a new access code with the token of a recovery link; signs in",
                "description": "Returns `reference` and the new `access_code` once (a retry "
                "with the same Idempotency-Key returns the same code); the old code stops "
                "working. 410: the link was used, replaced by a newer one, or expired; 404: "
                "not a link of this service.",
                "parameters": [IDEMPOTENCY],
                "requestBody": _json("#/components/schemas/RecoveryReset"),
                "responses": {
                    "200": {"description": "The new access code, with the reference"},
                    "404": ERROR,
                    "410": ERROR,
                    "409": CONFLICT,
                    "422": ERROR,
                    "429": {"description": "Too many attempts"},
                },
            }
        },
    )
    spec.path(
        "/case",
        operations={
            "get": {
                "summary": "Your case",
                "responses": {
                    "200": {
                        "description": "The case",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Case"}}
                        },
                    },
                    "401": UNAUTHORISED,
                },
            }
        },
    )
    for step, schema_name in (
        ("about_you", "Names"),
        ("contact", "Contact"),
        ("eligibility", "Eligibility"),
    ):
        spec.path(
            f"/case/steps/{step}",
            operations={
                "put": {
                    "summary": f"Save the {step} step",
                    "parameters": [IDEMPOTENCY],
                    "requestBody": _step_body(schema_name),
                    "responses": {
                        "200": OUTCOME,
                        "401": UNAUTHORISED,
                        "409": CONFLICT,
                        "422": ERROR,
                    },
                }
            },
        )
    spec.path(
        "/case/submission",
        operations={
            "post": {
                "summary": "Submit the registration",
                "parameters": [IDEMPOTENCY],
                "requestBody": _json("#/components/schemas/Version"),
                "responses": {"200": OUTCOME, "401": UNAUTHORISED, "409": CONFLICT, "422": ERROR},
            }
        },
    )
    spec.path(
        "/case/withdrawal",
        operations={
            "post": {
                "summary": "Withdraw",
                "parameters": [IDEMPOTENCY],
                "requestBody": _json("#/components/schemas/Withdraw"),
                "responses": {"200": OUTCOME, "401": UNAUTHORISED, "409": CONFLICT, "422": ERROR},
            }
        },
    )
    spec.path(
        "/case/information",
        operations={
            "post": {
                "summary": "Answer an officer's request for information",
                "parameters": [IDEMPOTENCY],
                "requestBody": _json("#/components/schemas/Answer"),
                "responses": {"200": OUTCOME, "401": UNAUTHORISED, "409": CONFLICT, "422": ERROR},
            }
        },
    )
    _staff_paths(spec)
    _application_paths(spec)
    _upload_paths(spec)
    document: dict[str, Any] = spec.to_dict()
    document["servers"] = [{"url": "/api/v1"}]
    _recovery_rules(document["components"]["schemas"]["Recovery"])
    return document


REFERENCE_FORMAT = "carepath-reference"


def _recovery_rules(schema: dict[str, Any]) -> None:
    """What RecoverySchema checks across fields and apispec cannot read from it."""
    properties = schema["properties"]
    properties["reference"].update(
        pattern=r"^[0-9A-Za-z -]*$",
        # A check symbol no pattern can state: a format, which a client knowing it can generate
        # and check (README, "JSON API"); tests/e2e/test_schemathesis.py registers it.
        format=REFERENCE_FORMAT,
        description="As shown at registration, XXXX-XXXX-C: Crockford base32 (case, spaces and "
        "hyphens do not matter; O reads as 0, I and L as 1), the last symbol a check symbol "
        "over the other eight. With a reference, the passport fields are not looked at.",
    )
    properties["passport_number"].update(
        pattern=r"^[A-Za-z0-9 -]*$",
        description="5-20 letters and digits once spaces and hyphens are taken out",
    )
    schema["anyOf"] = [
        {"required": ["reference"], "properties": {"reference": {"minLength": 9}}},
        {
            "required": ["passport_number", "passport_country"],
            "properties": {
                "passport_number": {"minLength": 5},
                "passport_country": {"minLength": 2},
            },
        },
    ]


def _application_paths(spec: APISpec) -> None:
    """Stage two: the invited applicant's sections and the application itself."""
    from web.sections import SECTION_SCHEMAS

    spec.components.schema(
        "Application",
        {
            "type": "object",
            "properties": {
                "reference": {"type": "string"},
                "status": {"type": "string"},
                "version": {"type": "integer"},
                "deadline": {"type": "string", "format": "date-time", "nullable": True},
                "open": {"type": "boolean"},
                "sections": {"type": "object"},
                "missing_sections": {"type": "array", "items": {"type": "string"}},
                "missing_documents": {"type": "array", "items": {"type": "string"}},
                "documents": {"type": "array", "items": {"type": "object"}},
                "submitted_at": {"type": "string", "format": "date-time", "nullable": True},
            },
        },
    )
    spec.path(
        "/case/application",
        operations={
            "get": {
                "summary": "Stage two: the invitation's deadline, sections saved, what is missing",
                "responses": {
                    "200": {
                        "description": "Where stage two stands",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/Application"}
                            }
                        },
                    },
                    "401": UNAUTHORISED,
                },
            }
        },
    )
    for section, schema in SECTION_SCHEMAS.items():
        name = "Section" + "".join(part.title() for part in section.split("_"))
        spec.components.schema(name, schema=schema)
        spec.path(
            f"/case/application/sections/{section}",
            operations={
                "put": {
                    "summary": f"Save the {section} section (invited applicants, before the deadline)",
                    "parameters": [IDEMPOTENCY],
                    "requestBody": _step_body(name),
                    "responses": {
                        "200": OUTCOME,
                        "401": UNAUTHORISED,
                        "409": CONFLICT,
                        "422": ERROR,
                    },
                }
            },
        )
    spec.path(
        "/case/application/submission",
        operations={
            "post": {
                "summary": "Send the application: every section and required document, in time",
                "description": "409 names `missing_sections` and `missing_documents`, or says "
                "the deadline passed. The answer carries the receipt: each document's SHA-256.",
                "parameters": [IDEMPOTENCY],
                "requestBody": _json("#/components/schemas/Version"),
                "responses": {"200": OUTCOME, "401": UNAUTHORISED, "409": CONFLICT, "422": ERROR},
            }
        },
    )


# A header value that percent-decodes to UTF-8 text: printable ASCII but `%`, or %XX escapes
# forming the UTF-8 sequences of RFC 3629 (no overlong forms, surrogates or beyond U+10FFFF).
_HEX = "[0-9A-Fa-f]"
_CONT = f"%[89ABab]{_HEX}"
PERCENT_ENCODED_UTF8 = (
    "^(?:"
    + "|".join(
        [
            "[ -$&-~]",
            f"%[0-7]{_HEX}",
            f"%(?:[Cc][2-9A-Fa-f]|[Dd]{_HEX}){_CONT}",
            f"%[Ee]0%[ABab]{_HEX}{_CONT}",
            f"%[Ee][1-9A-Ca-cEFef]{_CONT}{_CONT}",
            f"%[Ee][Dd]%[89]{_HEX}{_CONT}",
            f"%[Ff]0%[9ABab]{_HEX}{_CONT}{_CONT}",
            f"%[Ff][1-3]{_CONT}{_CONT}{_CONT}",
            f"%[Ff]4%8{_HEX}{_CONT}{_CONT}",
        ]
    )
    + ")+$"
)
# Non-empty base64 with its padding.
_B64 = "(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)"
TUS_METADATA = f"^item {_B64},filename {_B64}(?:,replaces {_B64})?$"

STAFF_SECURITY = [{"staffBearer": []}]
FORBIDDEN = {"description": "Signed in, but the role does not allow this"}
STAFF_UNAUTHORISED = {"description": "No live staff session (sign in again)"}


def _staff_paths(spec: APISpec) -> None:
    """The officers' operations: bearer tokens from POST /staff/session, roles per operation."""
    spec.components.security_scheme(
        "staffBearer",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "The token from POST /staff/session (email, password, TOTP code). "
            "Ends at sign-out, when an admin revokes it, or after the session lifetime.",
        },
    )
    spec.components.schema("StaffSignIn", schema=ApiStaffSignInSchema)
    spec.components.schema("BulkAssign", schema=ApiBulkAssignSchema)
    for action in ACTIONS:
        spec.components.schema(f"Action_{action}", schema=api_action_schema(action))
    reference = {"name": "reference", "in": "path", "required": True, "schema": {"type": "string"}}
    readers = " Roles: officer, auditor."
    spec.path(
        "/staff/session",
        operations={
            "post": {
                "summary": "Staff sign-in (password and second factor); returns a bearer token",
                "requestBody": _json("#/components/schemas/StaffSignIn"),
                "responses": {
                    "201": {"description": "Signed in: `token`, `expires_at`, `staff`"},
                    "401": {"description": "No match, or the account is locked"},
                    "422": ERROR,
                    "429": {"description": "Too many attempts"},
                },
            },
            "delete": {
                "summary": "Sign out: the token stops working",
                "security": STAFF_SECURITY,
                "responses": {"204": {"description": "Signed out"}, "401": STAFF_UNAUTHORISED},
            },
        },
    )
    spec.path(
        "/staff/intakes/{code}/board",
        parameters=[{"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}],
        operations={
            "get": {
                "summary": "Quota board of an intake: counts per pool and a per-minute series."
                + readers,
                "security": STAFF_SECURITY,
                "responses": {
                    "200": {"description": "The board"},
                    "401": STAFF_UNAUTHORISED,
                    "403": FORBIDDEN,
                    "404": {"description": "No such intake"},
                },
            }
        },
    )
    filters = [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in (
            ("intake", {"type": "string"}),
            ("status", {"type": "string", "enum": list(STATUSES)}),
            ("state", {"type": "string", "enum": list(ALLOCATION_STATES)}),
            ("assigned", {"type": "string", "description": "me, none, or a staff id (hex)"}),
            ("age", {"type": "string", "enum": list(AGES)}),
            ("sort", {"type": "string", "enum": list(SORTS)}),
            ("q", {"type": "string", "description": "reference prefix"}),
            ("after", {"type": "string", "description": "cursor: the page after"}),
            ("before", {"type": "string", "description": "cursor: the page before"}),
            ("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
        )
    ]
    spec.path(
        "/staff/queue",
        operations={
            "get": {
                "summary": "The queue, filtered and sorted, paged by keyset cursors." + readers,
                "security": STAFF_SECURITY,
                "parameters": filters,
                "responses": {
                    "200": {"description": "`cases`, `total`, `next`, `previous`"},
                    "401": STAFF_UNAUTHORISED,
                    "403": FORBIDDEN,
                    "422": ERROR,
                },
            }
        },
    )
    spec.path(
        "/staff/cases/{reference}",
        parameters=[reference],
        operations={
            "get": {
                "summary": "A case: answers, allocation, requests, timeline." + readers,
                "security": STAFF_SECURITY,
                "responses": {
                    "200": {"description": "The case"},
                    "401": STAFF_UNAUTHORISED,
                    "403": FORBIDDEN,
                    "404": {"description": "No such case"},
                },
            }
        },
    )
    document_id = {
        "name": "document_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "example": "d1"},
    }
    spec.path(
        "/staff/cases/{reference}/documents",
        parameters=[reference],
        operations={
            "get": {
                "summary": "The checklist and every document the case has had: current ones "
                "with a `download` link (none when a virus was found or the scan is pending), then replaced and removed "
                "ones; `missing_items` names required items without a document." + readers,
                "security": STAFF_SECURITY,
                "responses": {
                    "200": {"description": "`checklist`, `missing_items`, `documents`"},
                    "401": STAFF_UNAUTHORISED,
                    "403": FORBIDDEN,
                    "404": {"description": "No such case"},
                },
            }
        },
    )
    spec.path(
        "/staff/cases/{reference}/documents/{document_id}",
        parameters=[reference, document_id],
        operations={
            "get": {
                "summary": "A current document's bytes, as an attachment of its detected type "
                "(Content-Disposition with filename*, nosniff, CSP sandbox, no-store)." + readers,
                "security": STAFF_SECURITY,
                "responses": {
                    "200": {
                        "description": "The file",
                        "content": {
                            media: {"schema": {"type": "string", "format": "binary"}}
                            for media in ("application/pdf", "image/jpeg", "image/png")
                        },
                    },
                    "401": STAFF_UNAUTHORISED,
                    "403": FORBIDDEN,
                    "404": {
                        "description": "No such case or current document, its content is "
                        "missing, or a virus was found in it"
                    },
                    "409": {"description": "The document is waiting for the virus scan"},
                },
            }
        },
    )
    for action in ACTIONS:
        spec.path(
            f"/staff/cases/{{reference}}/{action}",
            parameters=[reference],
            operations={
                "post": {
                    "summary": f"{action.replace('_', ' ').capitalize()} (officers only)",
                    "security": STAFF_SECURITY,
                    "parameters": [IDEMPOTENCY],
                    "requestBody": _json(f"#/components/schemas/Action_{action}"),
                    "responses": {
                        "200": OUTCOME,
                        "401": STAFF_UNAUTHORISED,
                        "403": FORBIDDEN,
                        "404": {"description": "No such case"},
                        "409": CONFLICT,
                        "422": ERROR,
                    },
                }
            },
        )
    spec.path(
        "/staff/assignments",
        operations={
            "post": {
                "summary": "Assign many cases at once; a case changed since it was read is "
                "skipped and named (officers only)",
                "security": STAFF_SECURITY,
                "parameters": [IDEMPOTENCY],
                "requestBody": _json("#/components/schemas/BulkAssign"),
                "responses": {
                    "200": {"description": "`assigned` and `skipped` references"},
                    "401": STAFF_UNAUTHORISED,
                    "403": FORBIDDEN,
                    "422": ERROR,
                },
            }
        },
    )


# Documents: whole-file uploads, tus 1.0 resumable uploads, the list and downloads (web/uploads_api.py)

TUS_RESUMABLE = {
    "name": "Tus-Resumable",
    "in": "header",
    "required": True,
    "schema": {"type": "string", "enum": ["1.0.0"]},
}
NOT_INVITED = {"description": "No running invitation, the deadline passed, or the case is closed"}
REFUSED = {
    "description": "The file was refused (size, type, content or name): `errors.file` says why, "
    "`reason` gives the code; nothing was stored",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


def _upload_paths(spec: APISpec) -> None:
    spec.components.schema(
        "Document",
        {
            "type": "object",
            "properties": {
                "document_id": {"type": "string"},
                "item": {"type": "string"},
                "digest": {"type": "string", "description": "SHA-256, hex"},
                "size": {"type": "integer"},
                "media_type": {"type": "string", "description": "detected from the content"},
                "name": {"type": "string", "description": "for display only"},
                "scan": {"type": "string", "enum": ["clean", "not_scanned", "pending", "infected"]},
                "present": {"type": "boolean"},
                "uploaded_at": {"type": "string", "format": "date-time"},
            },
        },
    )
    document = {"application/json": {"schema": {"$ref": "#/components/schemas/Document"}}}
    item = {
        "name": "item",
        "in": "path",
        "required": True,
        "description": "a key of the case's checklist (GET /case/documents), e.g. identity; "
        "another is a 404",
        "schema": {"type": "string"},
    }
    document_id = {
        "name": "document_id",
        "in": "path",
        "required": True,
        "description": "a document's id on your case, e.g. d1",
        "schema": {"type": "string"},
    }
    upload_id = {"name": "upload_id", "in": "path", "required": True, "schema": {"type": "string"}}
    spec.path(
        "/case/documents",
        operations={
            "get": {
                "summary": "Your documents, and each checklist item with what is present or missing",
                "responses": {
                    "200": {"description": "`documents`, `checklist`, `missing`"},
                    "401": UNAUTHORISED,
                },
            }
        },
    )
    spec.path(
        "/case/documents/items/{item}",
        parameters=[item],
        operations={
            "put": {
                "summary": "Upload one file (up to the resumable threshold, CAREPATH_TUS_THRESHOLD) "
                "for a checklist item; its type is detected from the content",
                "parameters": [
                    IDEMPOTENCY,
                    {
                        "name": "Upload-Filename",
                        "in": "header",
                        "required": True,
                        "description": "the file's name, percent-encoded UTF-8 (display only)",
                        "schema": {"type": "string", "pattern": PERCENT_ENCODED_UTF8},
                    },
                    {
                        "name": "replaces",
                        "in": "query",
                        "required": False,
                        "description": "a document of the same item this one replaces",
                        "schema": {"type": "string"},
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}
                        }
                    },
                },
                "responses": {
                    "201": {"description": "Recorded; Location names it", "content": document},
                    "200": {
                        "description": "A replay: the document recorded first",
                        "content": document,
                    },
                    "401": UNAUTHORISED,
                    "404": {
                        "description": "No such checklist item, or no such document to replace"
                    },
                    "409": NOT_INVITED,
                    "411": {"description": "No Content-Length"},
                    "413": {"description": "Larger than the threshold: use /case/uploads"},
                    "422": REFUSED,
                },
            },
        },
    )
    spec.path(
        "/case/documents/{document_id}",
        parameters=[document_id],
        operations={
            "get": {
                "summary": "Download your document: an attachment of its detected type",
                "responses": {
                    "200": {
                        "description": "The content (Content-Disposition: attachment, nosniff)",
                        "content": {
                            "application/octet-stream": {
                                "schema": {"type": "string", "format": "binary"}
                            }
                        },
                    },
                    "401": UNAUTHORISED,
                    "404": {"description": "No such document on your case"},
                },
            },
            "delete": {
                "summary": "Remove a document",
                "parameters": [IDEMPOTENCY],
                "responses": {
                    "200": OUTCOME,
                    "401": UNAUTHORISED,
                    "404": {"description": "No such document"},
                    "409": NOT_INVITED,
                },
            },
        },
    )
    spec.path(
        "/case/uploads",
        operations={
            "options": {
                "summary": "tus discovery: Tus-Version, Tus-Extension (creation), Tus-Max-Size",
                "responses": {"204": {"description": "tus headers"}, "401": UNAUTHORISED},
            },
            "post": {
                "summary": "tus creation: a resumable upload bound to your case",
                "parameters": [
                    TUS_RESUMABLE,
                    {
                        "name": "Upload-Length",
                        "in": "header",
                        "required": True,
                        "description": "the file's size in bytes, at most 15 digits",
                        "schema": {"type": "integer", "minimum": 0, "maximum": 10**15 - 1},
                    },
                    {
                        "name": "Upload-Metadata",
                        "in": "header",
                        "required": True,
                        "description": "tus metadata: comma-separated `key value` pairs, each value "
                        "base64 (read as UTF-8 text; a byte that is not shows as U+FFFD): `item` "
                        "(a key of the case's checklist, see GET /case/documents: another is a "
                        "404), `filename`, optional `replaces` (a document id); the pattern shows "
                        "them in one order, any order is accepted",
                        "schema": {"type": "string", "pattern": TUS_METADATA},
                    },
                ],
                "responses": {
                    "201": {"description": "Created; Location is the upload's URL"},
                    "401": UNAUTHORISED,
                    "409": NOT_INVITED,
                    "412": {"description": "Tus-Resumable missing or not 1.0.0"},
                    "404": {"description": "The checklist has no such item"},
                    "413": {"description": "Larger than the checklist item allows"},
                    "422": ERROR,
                },
            },
        },
    )
    spec.path(
        "/case/uploads/{upload_id}",
        parameters=[upload_id],
        operations={
            "head": {
                "summary": "tus: the stored offset (Upload-Offset, Upload-Length; "
                "Carepath-Document-Id once recorded)",
                "parameters": [TUS_RESUMABLE],
                "responses": {
                    "200": {"description": "Offsets"},
                    "404": {"description": "No such upload on your case"},
                },
            },
            "get": {
                "summary": "The upload as JSON: offset, length, complete, document_id",
                "responses": {
                    "200": {"description": "The upload"},
                    "404": {"description": "No such upload on your case"},
                },
            },
            "patch": {
                "summary": "tus: append bytes at Upload-Offset; the last byte records the document",
                "parameters": [
                    TUS_RESUMABLE,
                    {
                        "name": "Upload-Offset",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 0},
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/offset+octet-stream": {
                            "schema": {"type": "string", "format": "binary"}
                        }
                    },
                },
                "responses": {
                    "204": {"description": "Stored and fsynced; Upload-Offset is the new offset"},
                    "404": {"description": "No such upload on your case"},
                    "409": {"description": "Upload-Offset is not the stored offset"},
                    "412": {"description": "Tus-Resumable missing or not 1.0.0"},
                    "415": {"description": "Not application/offset+octet-stream"},
                    "422": REFUSED,
                    "423": {"description": "Another request is appending to this upload"},
                },
            },
        },
    )
