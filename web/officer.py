"""Officers' pages under /staff: quota board, queue (filters, paging, bulk assign, CSV), case, actions.

Everything shown comes from read models (projections.officer) except a case's answers, details
and current documents, read from the Registry; every action is one call into domain.casework and
one Case event naming the officer. After an action the next page waits (briefly) for the read
models to reach it. Documents are downloaded as attachments only, never shown inline.
"""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO
from urllib.parse import quote
from uuid import UUID

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from marshmallow import Schema, ValidationError
from werkzeug.wsgi import wrap_file

from domain import errors as domain
from domain.allocator import Allocator
from domain.casework import Casework
from domain.documents import Documents
from domain.registry import Registry
from domain.staff import Staff
from domain.values import (
    REFUSAL_REASONS,
    RETURN_REASONS,
    STEPS,
    CaseStatus,
    CaseView,
    DocumentView,
    ScanState,
    StaffRole,
    StaffView,
)
from projections.allocation import AllocationQueries
from projections.documents import DocumentQueries, DocumentRow
from projections.lag import Lag, lags
from projections.officer import OfficerQueries, QueueFilter
from web import charts
from web.forms import STEP_FIELDS, STEP_TITLES, display
from web.i18n import current_language
from web.officer_labels import (
    ACTIONS,
    ALLOCATION,
    DOCUMENT_STATE,
    METRICS,
    REASONS,
    SCAN,
    STATUS,
    TIMELINE,
    label,
)
from web.officer_schemas import (
    ACTION_SCHEMAS,
    AGES,
    ALLOCATION_STATES,
    SORTS,
    STATUSES,
    BulkAssignSchema,
    QueueFilterSchema,
)
from web.officer_schemas import (
    ACTIONS as ACTION_NAMES,
)
from web.schemas import flatten, shared
from web.sections import SECTION_FIELDS, SECTION_TITLES, section_display
from web.staff_auth import current_staff, protect, require_staff
from web.times import zone_name

bp = Blueprint("officer", __name__, url_prefix="/staff")
protect(bp)

READERS = (StaffRole.OFFICER, StaffRole.AUDITOR)
WAIT_SECONDS = 2.0
PAGE_SIZE = 50
CSV_COLUMNS = (
    "reference",
    "intake",
    "pool",
    "status",
    "allocation_state",
    "slot",
    "deadline",
    "assigned_to",
    "open_request",
    "registered_at",
    "submitted_at",
    "decided_at",
    "age_days",
)


def registry() -> Registry:
    found: Registry = current_app.extensions["carepath.registry"]
    return found


def staff_app() -> Staff:
    found: Staff = current_app.extensions["carepath.staff"]
    return found


def casework() -> Casework:
    found: Casework = current_app.extensions["carepath.casework"]
    return found


def queries() -> OfficerQueries:
    found: OfficerQueries = current_app.extensions["carepath.officer_queries"]
    return found


def allocations() -> AllocationQueries:
    found: AllocationQueries = current_app.extensions["carepath.allocations"]
    return found


def documents() -> Documents:
    found: Documents = current_app.extensions["carepath.documents"]
    return found


def document_queries() -> DocumentQueries:
    """The documents read model, on the officers' engine (the object holds nothing else)."""
    return DocumentQueries(queries().engine)


def new_key() -> str:
    return secrets.token_urlsafe(24)


@bp.context_processor
def _labels() -> dict[str, Any]:
    return {
        "status_label": lambda c: label(STATUS, c),
        "allocation_label": lambda c: label(ALLOCATION, c),
        "reason_label": lambda c: label(REASONS, c),
        "timeline_label": lambda c: label(TIMELINE, c),
        "metric_label": lambda c: label(METRICS, c),
        "scan_label": lambda c: label(SCAN, c),
        "document_state_label": lambda c: label(DOCUMENT_STATE, c),
        "file_size": file_size,
    }


def file_size(size: int) -> str:
    """A size as people read it: bytes, KB or MB (1024-based, like the upload limits)."""
    if size < 1024:
        return _("%(n)s bytes", n=size)
    if size < 1024 * 1024:
        return _("%(n)s KB", n=f"{size / 1024:.0f}")
    return _("%(n)s MB", n=f"{size / (1024 * 1024):.1f}")


def _intakes() -> dict[str, Any]:
    """Every intake by id (hex), for names and codes on pages whose rows carry only ids."""
    return {i.id.hex: i for i in registry().list_intakes()}


def staff_names() -> dict[str, str]:
    """Staff names by id (hex), for `assigned to` and the timeline's `who`."""
    return {s.id.hex: s.name for s in staff_app().list_staff()}


def _officers() -> list[StaffView]:
    return [s for s in staff_app().list_staff() if s.role is StaffRole.OFFICER and not s.disabled]


# The quota board


@bp.get("/board")
@require_staff(*READERS)
def board() -> Any:
    intakes = registry().list_intakes()
    if not intakes:
        return render_template("officer/board.html", intakes=[], intake=None)
    wanted = request.args.get("intake")
    chosen = next((i for i in intakes if i.code == wanted), None)
    if wanted and chosen is None:
        abort(404)
    chosen = chosen or next((i for i in intakes if i.status.value == "open"), intakes[0])
    summary = queries().board(chosen.id)
    series = queries().series(chosen.id)
    held = [charts.Point(m.minute, m.held) for m in series]
    registered = [charts.Point(m.minute, m.registered) for m in series]
    zone = chosen.time_zone
    named = zone_name(zone, current_language())
    return render_template(
        "officer/board.html",
        intakes=intakes,
        intake=chosen,
        board=summary,
        metrics=[m for m in summary.metrics if m != "entered" or chosen.policy.value == "lottery"],
        lag=_lag(),
        series=series,
        minutes=[(charts.minute_label(m.minute, zone), m) for m in series[-60:]],
        zone_name=named,
        held_chart=charts.held_against_capacity(
            held,
            chosen.capacity,
            title=_("Places held against capacity"),
            description=_(
                "Places held at the end of each minute (%(zone)s); the dashed line is capacity.",
                zone=named,
            ),
            limit_label=_("Capacity"),
            zone=zone,
        ),
        registrations_chart=charts.bars(
            registered,
            title=_("Registrations per minute"),
            description=_("Cases registered in each minute (%(zone)s).", zone=named),
            zone=zone,
        ),
    )


def _lag() -> list[Lag]:
    """The allocator's and each read model's position against the log it follows."""
    allocator: Allocator = current_app.extensions["carepath.allocator"]
    return lags(registry(), allocator, queries().positions())


# The queue


def queue_filters(args: dict[str, Any]) -> tuple[QueueFilter, dict[str, Any], dict[str, list[str]]]:
    """The queue's filters from a query string: (filter, the loaded values, errors)."""
    try:
        # A filter form sends every field; an empty one means "any".
        loaded = shared(QueueFilterSchema).load({k: v for k, v in args.items() if v != ""})
    except ValidationError as invalid:
        return QueueFilter(now=datetime.now(UTC)), {}, flatten(invalid.messages)
    me = current_staff()
    intake_id = None
    if loaded.get("intake"):
        intake = _intakes_by_code().get(loaded["intake"])
        if intake is None:
            return QueueFilter(now=datetime.now(UTC)), loaded, {"intake": [_("Choose an intake")]}
        intake_id = intake.id
    assigned = loaded.get("assigned")
    return (
        QueueFilter(
            now=datetime.now(UTC),
            intake_id=intake_id,
            status=loaded.get("status"),
            allocation_state=loaded.get("state"),
            assigned=me.id.hex if assigned == "me" else assigned,
            age=loaded.get("age"),
            reference=loaded.get("q"),
            sort=loaded.get("sort") or "oldest",
        ),
        loaded,
        {},
    )


def _intakes_by_code() -> dict[str, Any]:
    return {i.code: i for i in registry().list_intakes()}


@bp.get("/queue")
@require_staff(*READERS)
def queue() -> Any:
    filters, loaded, errors = queue_filters(request.args.to_dict())
    page = None
    if not errors:
        page = queries().queue(
            filters, after=loaded.get("after"), before=loaded.get("before"), limit=PAGE_SIZE
        )
    return render_template(
        "officer/queue.html",
        **_queue_context(loaded, errors, page),
    ), (422 if errors else 200)


def _queue_context(
    loaded: dict[str, Any], errors: dict[str, list[str]], page: Any, **extra: Any
) -> dict[str, Any]:
    args = {k: v for k, v in loaded.items() if v and k not in {"after", "before"}}
    return {
        "page": page,
        "args": args,
        "errors": errors,
        "intakes": _intakes(),
        "names": staff_names(),
        "officers": _officers(),
        "statuses": STATUSES,
        "states": ALLOCATION_STATES,
        "ages": AGES,
        "sorts": SORTS,
        "idempotency_key": new_key(),
        "can_act": current_staff().role is StaffRole.OFFICER,
        **extra,
    }


@bp.post("/queue/assign")
@require_staff(StaffRole.OFFICER)
def bulk_assign() -> Any:
    form = {"case": request.form.getlist("case"), "assignee": request.form.get("assignee")}
    key = request.form.get("idempotency_key", "")
    try:
        loaded = shared(BulkAssignSchema).load(form)
    except ValidationError as invalid:
        return _requeue(flatten(invalid.messages), 422)
    me = current_staff()
    cases = [(UUID(item.split(":")[0]), int(item.split(":")[1])) for item in loaded["case"]]
    assignee = assignee_id(loaded["assignee"], me)
    outcome = casework().assign_many(cases, assignee, officer=me, idempotency_key=_key(key))
    updated = wait_for_views(outcome.position)
    references = queries().references([case_id for case_id, _ in outcome.skipped])
    return render_template(
        "officer/assigned.html",
        done=len(outcome.done),
        skipped=[(references.get(c.hex, c.hex), why) for c, why in outcome.skipped],
        updated=updated,
        back=request.form.get("back") or url_for(".queue"),
    )


def _requeue(errors: dict[str, list[str]], status: int) -> tuple[str, int]:
    filters, loaded, _errors = queue_filters(request.args.to_dict())
    page = queries().queue(filters, after=None, before=None, limit=PAGE_SIZE)
    return render_template("officer/queue.html", **_queue_context(loaded, errors, page)), status


@bp.get("/queue.csv")
@require_staff(*READERS)
def queue_csv() -> Response:
    filters, _loaded, errors = queue_filters(request.args.to_dict())
    if errors:
        abort(422)
    intakes, names = _intakes(), staff_names()

    def lines() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for row in queries().iter_queue(filters):
            intake = intakes.get(row.intake_id)
            writer.writerow(
                [
                    row.reference,
                    intake.code if intake else row.intake_id,
                    row.pool,
                    row.status,
                    row.allocation_state or "",
                    row.slot or "",
                    row.deadline.isoformat() if row.deadline else "",
                    names.get(row.assigned_to or "", row.assigned_to or ""),
                    "yes" if row.open_request else "no",
                    row.registered_at.isoformat() if row.registered_at else "",
                    row.submitted_at.isoformat() if row.submitted_at else "",
                    row.decided_at.isoformat() if row.decided_at else "",
                    "" if row.age_days is None else row.age_days,
                ]
            )
            yield out.getvalue()
            out.seek(0)
            out.truncate()

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    return Response(
        stream_with_context(lines()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="queue-{stamp}.csv"'},
    )


# A case


def _case_id(reference: str) -> UUID:
    try:
        return registry().find_case(reference)
    except domain.CaseNotFound:
        abort(404)


@bp.get("/cases/<reference>")
@require_staff(*READERS)
def case(reference: str) -> Any:
    return _render_case(_case_id(reference))


def _render_case(
    case_id: UUID,
    *,
    errors: dict[str, list[str]] | None = None,
    values: dict[str, Any] | None = None,
    banner: str | None = None,
    failed: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    found = registry().get_case(case_id)
    done = request.args.get("done")
    return render_template(
        "officer/case.html",
        case=found,
        allocation=allocations().of_case(case_id),
        timeline=queries().timeline(case_id),
        answers=_answers(found),
        details=_details(found),
        checklist=_checklist(found),
        names=staff_names(),
        officers=_officers(),
        me=current_staff(),
        can_act=current_staff().role is StaffRole.OFFICER,
        allowed=_allowed(found.status),
        refusal_reasons=REFUSAL_REASONS,
        return_reasons=RETURN_REASONS,
        errors=errors or {},
        values=values or {},
        failed=failed,
        banner=banner,
        done=label(ACTIONS, done) if done in ACTIONS else None,
        updating=request.args.get("updating") == "1",
        idempotency_key=new_key(),
    ), status


def _answers(found: CaseView) -> list[tuple[Any, list[tuple[Any, str]]]]:
    """The applicant's answers as (step title, [(question, answer)]) in the officer's language."""
    language = current_language()
    return [
        (
            STEP_TITLES[step.value],
            [
                (f.label, display(f, found.answers[step.value].get(f.name), language))
                for f in STEP_FIELDS[step.value]
            ],
        )
        for step in STEPS
        if step.value in found.answers
    ]


def _details(found: CaseView) -> list[tuple[Any, list[tuple[Any, str]]]]:
    """The stage-two details as (section title, [(question, answer)]), in the intake's order."""
    language = current_language()
    return [
        (
            SECTION_TITLES.get(section, section),
            [
                (f.label, section_display(f, found.details[section].get(f.name), language))
                for f in SECTION_FIELDS.get(section, ())
            ],
        )
        for section in found.intake.sections
        if section in found.details
    ]


def _checklist(found: CaseView) -> list[dict[str, Any]]:
    """Each checklist item with its current documents (from the case) and their history (the
    read model's replaced and removed documents); items the intake no longer lists come last."""
    language = current_language()
    history: dict[str, list[DocumentRow]] = {}
    for row in document_queries().documents_of(found.id):
        if not row.current:
            history.setdefault(row.item, []).append(row)
    items = [(i.key, i.name(language), i.required) for i in found.intake.checklist]
    known = {key for key, _name, _required in items}
    extra = {d.item for d in found.documents} | set(history)
    items += [(key, key, False) for key in sorted(extra - known)]
    return [
        {
            "key": key,
            "name": name,
            "required": required,
            "current": sorted(found.documents_for(key), key=_upload_order),
            "history": history.get(key, []),
        }
        for key, name, required in items
    ]


def _upload_order(document: DocumentView) -> int:
    return int(document.document_id.lstrip("d") or 0)


def _allowed(status: CaseStatus) -> set[str]:
    if status is CaseStatus.SUBMITTED:
        return {"assign", "request_information"}
    if status is CaseStatus.APPLICATION_SUBMITTED:
        return {"assign", "request_information", "accept", "return_incomplete"}
    if status is CaseStatus.ACCEPTED:
        return {"assign", "request_information", "approve", "refuse"}
    return set()


@bp.get("/cases/<reference>/documents/<document_id>")
@require_staff(*READERS)
def document(reference: str, document_id: str) -> Response:
    """A current document of the case, as an attachment of its detected type (404 if the case
    has no such document, its blob is missing, or a virus was found in it; 409 while it waits
    for the virus scanner)."""
    return staff_download(_case_id(reference), document_id)


def staff_download(case_id: UUID, document_id: str) -> Response:
    """What staff may download, shared by the pages and the API: fails closed while a
    configured scanner has given no verdict, as the checklist does."""
    found, content = documents().open_document(case_id, document_id)
    if found.scan is ScanState.PENDING:
        content.close()
        abort(409, description=_("This document is waiting for the virus scan. Try again later."))
    return attachment(found, content)


def attachment(document: DocumentView, content: BinaryIO) -> Response:
    """Stream a document so no browser renders it: attachment, its detected type, nosniff,
    sandboxed if opened anyway, never cached."""
    response = Response(
        wrap_file(request.environ, content),
        mimetype=document.media_type,
        direct_passthrough=True,
    )
    response.content_length = document.size
    response.headers["Content-Disposition"] = content_disposition(document.name)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = "sandbox"
    return response


def content_disposition(name: str) -> str:
    """`attachment` with the name twice (RFC 6266): an ASCII fallback, and in full as UTF-8."""
    fallback = (
        "".join(ch if " " <= ch <= "~" and ch not in '"\\%;' else "_" for ch in name).strip()
        or "document"
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


@bp.post("/cases/<reference>/actions/<action>")
@require_staff(StaffRole.OFFICER)
def act(reference: str, action: str) -> Any:
    if action not in ACTION_NAMES:
        abort(404)
    case_id = _case_id(reference)
    schema: Schema = shared(ACTION_SCHEMAS[action])
    form = request.form.to_dict()
    form["reasons"] = request.form.getlist("reasons")
    if action not in {"return_incomplete", "refuse"}:
        form.pop("reasons")
    try:
        loaded = schema.load(form)
    except ValidationError as invalid:
        return _render_case(
            case_id, errors=flatten(invalid.messages), values=form, failed=action, status=422
        )
    try:
        outcome = perform(
            action, case_id, loaded, current_staff(), _key(form.get("idempotency_key"))
        )
    except domain.StaleVersion as stale:
        return _render_case(case_id, banner=_stale_message(stale), values=form, status=409)
    except domain.InvalidValue as invalid:
        return _render_case(
            case_id,
            errors={invalid.field: [invalid.message]},
            values=form,
            failed=action,
            status=422,
        )
    except (domain.CaseActionRefused, domain.NoOpenRequest) as refused:
        return _render_case(case_id, banner=str(refused), values=form, status=409)
    updated = wait_for_views(outcome.position)
    return redirect(
        url_for(
            ".case",
            reference=reference,
            done=action,
            **({} if updated else {"updating": "1"}),
        )
    )


def perform(action: str, case_id: UUID, loaded: dict[str, Any], me: StaffView, key: str) -> Any:
    """Run one officer action (shared by the HTML pages and the JSON API)."""
    work = casework()
    common: dict[str, Any] = {
        "officer": me,
        "expected_version": loaded["version"],
        "idempotency_key": key,
    }
    if action == "assign":
        return work.assign(case_id, assignee_id(loaded["assignee"], me), **common)
    if action == "request_information":
        return work.request_information(case_id, loaded["message"], **common)
    if action == "accept":
        return work.accept_for_processing(case_id, **common)
    if action == "return_incomplete":
        return work.return_incomplete(
            case_id, loaded["reasons"], loaded.get("note") or "", **common
        )
    if action == "approve":
        return work.approve(case_id, loaded.get("note") or "", **common)
    return work.refuse(case_id, loaded["reasons"], loaded.get("note") or "", **common)


def assignee_id(value: str, me: StaffView) -> UUID | None:
    if value == "me":
        return me.id
    if value == "none":
        return None
    return UUID(value)


def _key(value: str | None) -> str:
    """The form's idempotency key; a damaged one gets a fresh key (the version still guards)."""
    if value and 16 <= len(value) <= 64 and value.replace("-", "").replace("_", "").isalnum():
        return value
    return new_key()


def _stale_message(stale: domain.StaleVersion) -> str:
    return _(
        "Someone else changed this case since you opened it (it is now at version %(version)s). "
        "Nothing was saved. Review the case as it is now and act again if you still need to.",
        version=stale.actual,
    )


def wait_for_views(position: int | None) -> bool:
    """Wait briefly for the case read model to reach `position`; False if it has not yet."""
    if position is None:
        return True
    return queries().wait_for("casework_view", "Registry", position, timeout=WAIT_SECONDS)


__all__ = ["attachment", "bp", "perform", "staff_download"]
