"""The officers' JSON API under /api/v1/staff: the same roles and rules as the officer pages.

Sign in with email, password and a TOTP code to get a bearer token (`Authorization: Bearer
<token>`); every change also needs an `Idempotency-Key` header and the case version it was made
from, exactly as for applicants.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from marshmallow import Schema, ValidationError

from domain.registry import Registry
from domain.staff import Staff
from domain.values import CaseView, StaffRole, StaffView
from projections.officer import Board, QueueRow
from web.api import Invalid, body, idempotency_key
from web.extensions import limiter
from web.officer import (
    allocations,
    assignee_id,
    casework,
    document_queries,
    perform,
    queries,
    queue_filters,
    staff_download,
    staff_names,
    wait_for_views,
)
from web.officer_schemas import (
    ACTIONS,
    ApiBulkAssignSchema,
    ApiStaffSignInSchema,
    QueueFilterSchema,
    api_action_schema,
)
from web.schemas import flatten, shared
from web.staff_auth import current_staff, protect, require_staff

bp = Blueprint("staff_api", __name__)
protect(bp)

READERS = (StaffRole.OFFICER, StaffRole.AUDITOR)
API_ACTION_SCHEMAS: dict[str, Schema] = {a: api_action_schema(a)() for a in ACTIONS}


def registry() -> Registry:
    found: Registry = current_app.extensions["carepath.registry"]
    return found


def staff_app() -> Staff:
    found: Staff = current_app.extensions["carepath.staff"]
    return found


@bp.errorhandler(Invalid)
def _invalid(error: Invalid) -> tuple[Response, int]:
    return jsonify({"error": "Some of the information is not valid.", "errors": error.errors}), 422


def staff_json(member: StaffView) -> dict[str, Any]:
    return {"id": member.id.hex, "email": member.email, "name": member.name, "role": member.role}


@bp.post("/session")
@limiter.limit(lambda: current_app.config.get("RATELIMIT_STAFF_SIGNIN", "10 per minute"))
def sign_in() -> tuple[Response, int]:
    form = body(shared(ApiStaffSignInSchema))
    signed = staff_app().sign_in(form["email"], form["password"], form["code"])
    member = staff_app().get(signed.staff_id)
    return jsonify(
        {
            "token": f"{signed.staff_id.hex}.{signed.token}",
            "expires_at": signed.expires_at.isoformat(),
            "staff": staff_json(member),
        }
    ), 201


@bp.delete("/session")
@require_staff()
def sign_out() -> tuple[str, int]:
    _, _, token = request.headers.get("Authorization", "").removeprefix("Bearer ").partition(".")
    staff_app().sign_out(current_staff().id, token)
    return "", 204


@bp.get("/me")
@require_staff()
def me() -> Response:
    return jsonify(staff_json(current_staff()))


@bp.get("/intakes/<code>/board")
@require_staff(*READERS)
def board(code: str) -> Response:
    intake = registry().get_intake(code)
    summary = queries().board(intake.id)
    return jsonify(
        {
            "intake": intake.code,
            **board_json(summary),
            "series": [
                {
                    "minute": m.minute.isoformat(),
                    "registered": m.registered,
                    "submitted": m.submitted,
                    "held": m.held,
                }
                for m in queries().series(intake.id)
            ],
        }
    )


def board_json(summary: Board) -> dict[str, Any]:
    return {
        "capacity": summary.capacity,
        "pools": [
            {"pool": p.pool, "capacity": p.capacity, "places_left": p.places_left, **p.counts}
            for p in summary.pools
        ],
    }


@bp.get("/queue")
@require_staff(*READERS)
def queue() -> Response:
    args = request.args.to_dict()
    limit = args.pop("limit", "50")
    if not limit.isdigit() or not 1 <= int(limit) <= 500:
        raise Invalid({"limit": ["limit is a whole number from 1 to 500"]})
    try:
        shared(QueueFilterSchema).load(args)
    except ValidationError as invalid:
        raise Invalid(flatten(invalid.messages)) from None
    filters, loaded, errors = queue_filters(args)
    if errors:
        raise Invalid(errors)
    page = queries().queue(
        filters, after=loaded.get("after"), before=loaded.get("before"), limit=int(limit)
    )
    names = staff_names()
    return jsonify(
        {
            "total": page.total,
            "next": page.next_cursor,
            "previous": page.previous_cursor,
            "cases": [row_json(row, names) for row in page.rows],
        }
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def row_json(row: QueueRow, names: dict[str, str]) -> dict[str, Any]:
    return {
        "reference": row.reference,
        "intake_id": row.intake_id,
        "pool": row.pool,
        "status": row.status,
        "allocation_state": row.allocation_state,
        "slot": row.slot,
        "deadline": _iso(row.deadline),
        "assigned_to": row.assigned_to,
        "assigned_to_name": names.get(row.assigned_to or ""),
        "open_request": row.open_request,
        "registered_at": _iso(row.registered_at),
        "submitted_at": _iso(row.submitted_at),
        "decided_at": _iso(row.decided_at),
        "age_days": row.age_days,
        "version": row.version,
    }


@bp.get("/cases/<reference>")
@require_staff(*READERS)
def case(reference: str) -> Response:
    found = registry().get_case(registry().find_case(reference))
    return jsonify(case_json(found))


def case_json(found: CaseView) -> dict[str, Any]:
    allocation = allocations().of_case(found.id)
    return {
        "reference": found.reference,
        "intake": found.intake.code,
        "pool": found.pool,
        "status": found.status.value,
        "version": found.version,
        "assigned_to": found.assigned_to.hex if found.assigned_to else None,
        "answers": found.answers,
        "details": found.details,
        "registered_at": _iso(found.registered_at),
        "submitted_at": _iso(found.submitted_at),
        "decided_at": _iso(found.decided_at),
        "decision_reasons": list(found.decision_reasons),
        "decision_note": found.decision_note,
        "information_requests": [
            {
                "request_id": r.request_id,
                "message": r.message,
                "requested_at": _iso(r.requested_at),
                "officer_id": r.officer_id.hex,
                "answer": r.answer,
                "answered_at": _iso(r.answered_at),
            }
            for r in found.requests
        ],
        "allocation": None
        if allocation is None
        else {
            "state": allocation.state,
            "pool": allocation.pool,
            "slot": allocation.slot,
            "deadline": _iso(allocation.deadline),
            "waitlist_position": allocation.waitlist_position,
            "reason": allocation.reason,
        },
        "timeline": [
            {"at": _iso(e.at), "what": e.what, "actor": e.actor, "details": e.details}
            for e in queries().timeline(found.id)
        ],
    }


@bp.get("/cases/<reference>/documents")
@require_staff(*READERS)
def case_documents(reference: str) -> Response:
    """The checklist and every document the case has had: current ones (from the case, with a
    download link unless a virus was found or the scan is pending), then replaced and removed ones (the read model)."""
    found = registry().get_case(registry().find_case(reference))
    current = {d.document_id: d for d in found.documents}
    listed: list[dict[str, Any]] = [
        {
            "document_id": d.document_id,
            "item": d.item,
            "name": d.name,
            "media_type": d.media_type,
            "size": d.size,
            "digest": d.digest,
            "scan": d.scan.value,
            "state": "current",
            "uploaded_at": _iso(d.uploaded_at),
            "ended_at": None,
            "download": None
            if d.scan.value in {"infected", "pending"}
            else url_for(".case_document", reference=found.reference, document_id=d.document_id),
        }
        for d in found.documents
    ]
    listed += [
        {
            "document_id": r.document_id,
            "item": r.item,
            "name": None,  # the read model keeps no file names (they can carry personal data)
            "media_type": r.media_type,
            "size": r.size,
            "digest": r.digest,
            "scan": r.scan,
            "state": r.state,
            "uploaded_at": _iso(r.uploaded_at),
            "ended_at": _iso(r.ended_at),
            "download": None,
        }
        for r in document_queries().documents_of(found.id)
        if r.document_id not in current and not r.current
    ]
    listed.sort(key=lambda d: int(str(d["document_id"]).lstrip("d") or 0))
    return jsonify(
        {
            "reference": found.reference,
            "status": found.status.value,
            "version": found.version,
            "checklist": [item.as_dict() for item in found.intake.checklist],
            "missing_items": list(found.missing_items),
            "documents": listed,
        }
    )


@bp.get("/cases/<reference>/documents/<document_id>")
@require_staff(*READERS)
def case_document(reference: str, document_id: str) -> Response:
    """One current document's bytes, with the same headers as the officer pages' download."""
    return staff_download(registry().find_case(reference), document_id)


@bp.post("/cases/<reference>/<action>")
@require_staff(StaffRole.OFFICER)
def act(reference: str, action: str) -> tuple[Response, int] | Response:
    if action not in ACTIONS:
        return jsonify({"error": f"no action {action}", "code": "NotFound"}), 404
    key = idempotency_key()
    case_id = registry().find_case(reference)
    loaded = body(API_ACTION_SCHEMAS[action])
    outcome = perform(action, case_id, loaded, current_staff(), key)
    updated = wait_for_views(outcome.position)
    response = jsonify(
        {"command": outcome.command, "version": outcome.version, "views_updated": updated}
    )
    response.headers["Idempotent-Replayed"] = "true" if outcome.replayed else "false"
    return response


@bp.post("/assignments")
@require_staff(StaffRole.OFFICER)
def assign_many() -> Response:
    key = idempotency_key()
    loaded = body(shared(ApiBulkAssignSchema))
    me = current_staff()
    by_id: dict[Any, str] = {}
    cases = []
    for item in loaded["cases"]:
        case_id = registry().find_case(item["reference"])
        by_id[case_id] = item["reference"]
        cases.append((case_id, item["version"]))
    target = assignee_id(loaded["assignee"], me)
    outcome = casework().assign_many(cases, target, officer=me, idempotency_key=key)
    return jsonify(
        {
            "assigned": [by_id[c] for c in outcome.done],
            "skipped": [{"reference": by_id[c], "reason": why} for c, why in outcome.skipped],
            "views_updated": wait_for_views(outcome.position),
            "at": datetime.now(UTC).isoformat(),
        }
    )
