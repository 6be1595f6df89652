"""The applicant's journey as a JSON API under /api/v1, described by /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, request, session
from flask_babel import gettext as _
from marshmallow import Schema, ValidationError

from domain.documents import Documents, StageTwo
from domain.registry import Registry
from domain.values import GENERAL_POOL, STEPS, CaseView, IntakeStatus, IntakeView, Outcome
from projections.allocation import Allocation, AllocationQueries, ReadModelUnavailable
from web.auth import end_sessions_before_now, sign_in_session, signed_in_case_id
from web.extensions import limiter
from web.i18n import current_language
from web.openapi import build_spec
from web.public import draw_record
from web.recovery import per_address, per_case, recovery, request_link
from web.schemas import (
    IDEMPOTENCY_KEY,
    STEP_SCHEMAS,
    ApiAnswerSchema,
    ApiRecoveryResetSchema,
    ApiRecoverySchema,
    ApiRegisterSchema,
    ApiSignInSchema,
    ApiStepSchema,
    ApiVersionSchema,
    ApiWithdrawSchema,
    NamesSchema,
    clean_answers,
    flatten,
    shared,
)
from web.sections import SECTION_SCHEMAS, clean_section

bp = Blueprint("api", __name__)

STEP_NAMES = tuple(step.value for step in STEPS)


class Invalid(Exception):
    """Raised inside this module when a request body or header fails validation."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


@bp.errorhandler(Invalid)
def _invalid(error: Invalid) -> tuple[Response, int]:
    return jsonify(
        {"error": _("Some of the information is not valid."), "errors": error.errors}
    ), 422


def registry() -> Registry:
    registry: Registry = current_app.extensions["carepath.registry"]
    return registry


def body(schema: Schema) -> dict[str, Any]:
    if not request.is_json:
        abort(415)
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # nested deeper than the parser follows: not a body we take
        data = None
    if not isinstance(data, dict):
        raise Invalid({"_body": [_("The body must be a JSON object.")]})
    try:
        loaded: dict[str, Any] = schema.load(data)
    except ValidationError as invalid:
        raise Invalid(flatten(invalid.messages)) from None
    return loaded


def idempotency_key() -> str:
    key = request.headers.get("Idempotency-Key", "")
    if not IDEMPOTENCY_KEY.match(key):
        raise Invalid(
            {
                "Idempotency-Key": [
                    _(
                        "Send an Idempotency-Key header of 16-64 letters, digits, '-' or '_', new "
                        "for each change and the same when you retry it."
                    )
                ]
            }
        )
    return key


def signed_in_case() -> CaseView:
    return registry().get_case(signed_in_case_id())


def intake_json(intake: IntakeView) -> dict[str, Any]:
    return {
        "code": intake.code,
        "name": intake.name,
        "stream": intake.stream,
        "capacity": intake.capacity,
        "policy": intake.policy.value,
        "status": intake.status.value,
        "opens_at": intake.opens_at.isoformat() if intake.opens_at else None,
        "closes_at": intake.closes_at.isoformat() if intake.closes_at else None,
        "time_zone": intake.time_zone,
        "document_deadline_days": intake.document_deadline_days,
        "pools": pools_json(intake),
        "unused_reserved": intake.unused_reserved.value,
        "draw": draw_record(intake),
    }


def pools_json(intake: IntakeView) -> list[dict[str, Any]]:
    """The pools and their places, reserved ones first in name order, then the general pool
    (README, "Pools": general = capacity - reserved); `label` is who qualifies, as the register
    form asks it."""
    language = current_language()
    reserved = [
        {"name": name, "places": places, "label": intake.pool_label(name, language)}
        for name, places in sorted(intake.pools.items())
    ]
    general = intake.capacity - sum(intake.pools.values())
    return [*reserved, {"name": GENERAL_POOL, "places": general, "label": None}]


def case_json(case: CaseView) -> dict[str, Any]:
    return {
        "reference": case.reference,
        "intake": case.intake.code,
        "status": case.status.value,
        "version": case.version,
        "language": case.language,
        "pool": case.pool,
        "answers": case.answers,
        "steps_done": list(case.steps_done),
        "next_step": case.next_step,
        "registered_at": case.registered_at.isoformat(),
        "submitted_at": case.submitted_at.isoformat() if case.submitted_at else None,
        "withdrawn_at": case.withdrawn_at.isoformat() if case.withdrawn_at else None,
        "decided_at": case.decided_at.isoformat() if case.decided_at else None,
        "decision_reasons": list(case.decision_reasons),
        "decision_note": case.decision_note,
        "information_requests": [
            {
                "request_id": r.request_id,
                "message": r.message,
                "requested_at": r.requested_at.isoformat(),
                "answer": r.answer,
                "answered_at": r.answered_at.isoformat() if r.answered_at else None,
            }
            for r in case.requests
        ],
    }


def outcome_json(outcome: Outcome) -> Response:
    """The same body for a first request and its replays; a header tells them apart."""
    response = jsonify({"command": outcome.command, "version": outcome.version})
    response.headers["Idempotent-Replayed"] = "true" if outcome.replayed else "false"
    return response


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(build_spec())


@bp.get("/intakes")
def intakes() -> Response:
    return jsonify(
        {
            "intakes": [
                intake_json(i) for i in registry().list_intakes() if i.status is IntakeStatus.OPEN
            ]
        }
    )


@bp.get("/intakes/<code>")
def intake(code: str) -> Response:
    return jsonify(intake_json(registry().get_intake(code)))


@bp.post("/intakes/<code>/registrations")
@limiter.limit(lambda: current_app.config["RATELIMIT_REGISTER"])
def register(code: str) -> tuple[Response, int]:
    key = idempotency_key()
    intake = registry().get_intake(code)
    posted = body(shared(ApiRegisterSchema))
    pool = posted.pop("pool")
    if pool != GENERAL_POOL and pool not in intake.pools:
        choose = ", ".join([*sorted(intake.pools), GENERAL_POOL])
        raise Invalid(
            {"pool": [_("This intake has no such pool; give one of: %(pools)s", pools=choose)]}
        )
    answers = clean_answers("about_you", posted)
    done = registry().register(
        code, answers, language=current_language(), idempotency_key=key, pool=pool
    )
    sign_in_session(done.case_id)
    response = jsonify(
        {"reference": done.reference, "access_code": done.access_code, "version": done.version}
    )
    response.headers["Idempotent-Replayed"] = "true" if done.replayed else "false"
    return response, 201


@bp.post("/session")
@limiter.limit(lambda: current_app.config["RATELIMIT_SIGNIN"])
def sign_in() -> Response:
    form = body(shared(ApiSignInSchema))
    case_id = registry().sign_in(form["reference"], form["access_code"])
    sign_in_session(case_id)
    return jsonify(case_json(registry().get_case(case_id)))


@bp.post("/recovery")
@per_address
@per_case
def ask_recovery() -> tuple[Response, int]:
    """A recovery link by email; the same answer whether or not the details matched."""
    form = body(shared(ApiRecoverySchema))
    request_link(form)
    minutes = int(recovery().link_lifetime.total_seconds() // 60)
    message = _(
        "If these details match an application, we have sent a link to the email address it "
        "gives. The link works for %(minutes)s minutes.",
        minutes=minutes,
    )
    return jsonify({"message": message}), 202


@bp.post("/recovery/reset")
@limiter.limit(lambda: current_app.config["RATELIMIT_SIGNIN"])
def reset_access_code() -> Response:
    """A recovery link's token for a new access code, shown once; signs in."""
    key = idempotency_key()
    form = body(shared(ApiRecoveryResetSchema))
    done = recovery().reset(form["token"], idempotency_key=key)
    if not done.replayed:  # a retry of the same reset keeps the session its first try opened
        end_sessions_before_now(done.case_id)
    sign_in_session(done.case_id)
    response = jsonify({"reference": done.reference, "access_code": done.access_code})
    response.headers["Idempotent-Replayed"] = "true" if done.replayed else "false"
    return response


@bp.delete("/session")
def sign_out() -> tuple[str, int]:
    session.clear()
    return "", 204


@bp.get("/case")
def case() -> Response:
    """The case, with where it stands in the allocation (null until the allocator has decided)."""
    found = signed_in_case()
    body = case_json(found)
    try:
        allocation = allocations().of_case(found.id)
    except ReadModelUnavailable:
        body["allocation"], body["allocation_unavailable"] = None, True
    else:
        body["allocation"] = allocation_json(allocation) if allocation else None
    return jsonify(body)


def allocation_json(allocation: Allocation) -> dict[str, Any]:
    return {
        "state": allocation.state,
        "pool": allocation.pool,
        "slot": allocation.slot,
        "deadline": allocation.deadline.isoformat() if allocation.deadline else None,
        "waitlist_position": allocation.waitlist_position,
        "reason": allocation.reason,
    }


def allocations() -> AllocationQueries:
    queries: AllocationQueries = current_app.extensions["carepath.allocations"]
    return queries


@bp.put("/case/steps/<step>")
def save_step(step: str) -> Response:
    if step not in STEP_NAMES:
        abort(404)
    case_id = signed_in_case_id()
    key = idempotency_key()
    envelope = body(shared(ApiStepSchema))
    schema = shared(NamesSchema) if step == "about_you" else shared(STEP_SCHEMAS[step])
    try:
        answers = clean_answers(step, schema.load(envelope["answers"]))
    except ValidationError as invalid:
        raise Invalid({f"answers.{k}": v for k, v in flatten(invalid.messages).items()}) from None
    return outcome_json(
        registry().save_step(
            case_id,
            step,
            answers,
            expected_version=envelope["version"],
            language=current_language(),
            idempotency_key=key,
        )
    )


@bp.post("/case/submission")
def submit() -> Response:
    case_id = signed_in_case_id()
    key = idempotency_key()
    envelope = body(shared(ApiVersionSchema))
    return outcome_json(
        registry().submit(
            case_id,
            expected_version=envelope["version"],
            language=current_language(),
            idempotency_key=key,
        )
    )


@bp.post("/case/withdrawal")
def withdraw() -> Response:
    case_id = signed_in_case_id()
    key = idempotency_key()
    envelope = body(shared(ApiWithdrawSchema))
    return outcome_json(
        registry().withdraw(
            case_id,
            expected_version=envelope["version"],
            reason=envelope["reason"],
            idempotency_key=key,
        )
    )


@bp.post("/case/information")
def provide_information() -> Response:
    """The applicant's answer to an officer's request for information."""
    case_id = signed_in_case_id()
    key = idempotency_key()
    envelope = body(shared(ApiAnswerSchema))
    return outcome_json(
        registry().provide_information(
            case_id,
            envelope["request_id"],
            envelope["answer"],
            expected_version=envelope["version"],
            idempotency_key=key,
        )
    )


# Stage two: the invited applicant's details and the application itself (documents are
# uploaded through web/uploads_api.py, under /api/v1/case/documents and /api/v1/case/uploads).


def documents_service() -> Documents:
    service: Documents = current_app.extensions["carepath.documents"]
    return service


def application_json(stage: StageTwo) -> dict[str, Any]:
    case = stage.case
    return {
        "reference": case.reference,
        "status": case.status.value,
        "version": case.version,
        "deadline": stage.deadline.isoformat() if stage.deadline else None,
        "open": stage.open,
        "sections": {
            name: {"saved": name in case.details, "answers": case.details.get(name)}
            for name in case.intake.sections
        },
        "missing_sections": list(case.missing_sections),
        "missing_documents": list(case.missing_items),
        "documents_url": "/api/v1/case/documents",
        "submitted_at": case.application_submitted_at.isoformat()
        if case.application_submitted_at
        else None,
        "documents": [
            {"document_id": d.document_id, "item": d.item, "digest": d.digest, "size": d.size}
            for d in case.documents
        ],
    }


@bp.get("/case/application")
def application() -> Response:
    """Stage two: the deadline, the sections saved, what is still missing."""
    return jsonify(application_json(documents_service().stage_two(signed_in_case_id())))


@bp.put("/case/application/sections/<section>")
def save_section(section: str) -> Response:
    if section not in SECTION_SCHEMAS:
        abort(404)
    case_id = signed_in_case_id()
    key = idempotency_key()
    envelope = body(shared(ApiStepSchema))
    try:
        answers = clean_section(shared(SECTION_SCHEMAS[section]).load(envelope["answers"]))
    except ValidationError as invalid:
        raise Invalid({f"answers.{k}": v for k, v in flatten(invalid.messages).items()}) from None
    return outcome_json(
        documents_service().save_details(
            case_id,
            section,
            answers,
            expected_version=envelope["version"],
            language=current_language(),
            idempotency_key=key,
        )
    )


@bp.post("/case/application/submission")
def submit_application() -> Response:
    """Send stage two; 409 names the missing sections and documents."""
    case_id = signed_in_case_id()
    key = idempotency_key()
    envelope = body(shared(ApiVersionSchema))
    outcome = documents_service().submit_application(
        case_id,
        expected_version=envelope["version"],
        language=current_language(),
        idempotency_key=key,
    )
    response = jsonify(
        {
            "command": outcome.command,
            "version": outcome.version,
            "receipt": application_json(documents_service().stage_two(case_id)),
        }
    )
    response.headers["Idempotent-Replayed"] = "true" if outcome.replayed else "false"
    return response
