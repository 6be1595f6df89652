"""The applicant's pages: open intakes, the registration steps, review, receipt, status, sign-in."""

from __future__ import annotations

import secrets
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from marshmallow import Schema, ValidationError
from werkzeug.wrappers import Response

from domain import errors as domain
from domain.case import DRAFT_CHARS
from domain.registry import Registry
from domain.values import (
    GENERAL_POOL,
    REVIEW,
    STEPS,
    WITHDRAWABLE,
    CaseView,
    IntakeStatus,
    IntakeView,
)
from projections.allocation import AllocationQueries, ReadModelUnavailable
from web.auth import CODE_CHANGED, sign_in_session, signed_in_case_id
from web.errors import describe
from web.extensions import limiter
from web.forms import STEP_FIELDS, STEP_TITLES, choices, display
from web.i18n import current_language, local_time_filter
from web.schemas import (
    STEP_SCHEMAS,
    AnswerSchema,
    EnvelopeSchema,
    NamesSchema,
    SignInSchema,
    WithdrawSchema,
    clean_answers,
    flatten,
    shared,
)

bp = Blueprint("applicant", __name__)

STEP_NAMES = tuple(step.value for step in STEPS)


def registry() -> Registry:
    registry: Registry = current_app.extensions["carepath.registry"]
    return registry


def allocations() -> AllocationQueries:
    queries: AllocationQueries = current_app.extensions["carepath.allocations"]
    return queries


def new_key() -> str:
    """A fresh idempotency key for a form: a repeat of this very form converges on one event."""
    return secrets.token_urlsafe(24)


def parse(schema: Schema, form: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    try:
        return schema.load(form), {}
    except ValidationError as invalid:
        return {}, flatten(invalid.messages)


def parse_step(
    step: str, *, names_only: bool = False
) -> tuple[dict[str, Any], dict[str, Any], dict[str, list[str]]]:
    """(envelope, answers, errors) of a posted step form; answers are empty if anything is wrong."""
    schema: Schema = shared(NamesSchema) if names_only else shared(STEP_SCHEMAS[step])
    envelope, envelope_errors = parse(shared(EnvelopeSchema), request.form.to_dict())
    posted = {name: request.form.get(name) for name in schema.fields if name in request.form}
    answers, errors = parse(schema, posted)
    errors.update(envelope_errors)
    return envelope, clean_answers(step, answers), errors


def signed_in_case() -> CaseView:
    return registry().get_case(signed_in_case_id())


def render_step(
    step: str,
    *,
    values: dict[str, Any],
    errors: dict[str, list[str]],
    version: int | None,
    intake: Any,
    case: CaseView | None = None,
    banner: str | None = None,
    banner_links: tuple[tuple[str, str], ...] = (),
    status: int = 200,
) -> tuple[str, int]:
    language = current_language()
    return render_template(
        "step.html",
        step=step,
        steps=STEP_NAMES,
        step_titles=STEP_TITLES,
        title=STEP_TITLES[step],
        fields=STEP_FIELDS[step],
        choices=lambda name: choices(name, language),
        values=values,
        errors=errors,
        version=version,
        idempotency_key=new_key(),
        intake=intake,
        case=case,
        banner=banner,
        banner_links=banner_links,
        action=url_for(".register", code=intake.code)
        if case is None
        else url_for(".step", step=step),
    ), status


def posted_values(case: CaseView, step: str) -> dict[str, Any]:
    """What a step form shows again after a refused post: what was typed, and for the fields
    that cannot change after registering (shown as text, never posted), what is stored."""
    stored = case.answers.get(step, {})
    locked = {field.name for field in STEP_FIELDS[step] if field.locked}
    return {**request.form.to_dict(), **{name: stored.get(name) for name in locked}}


def after_save(step: str) -> Response:
    if request.form.get("action") == "later":
        return redirect(url_for(".saved"))
    if request.form.get("return") == "review":  # reached by "Change" on the review page
        return redirect(url_for(".review"))
    position = STEP_NAMES.index(step)
    following = STEP_NAMES[position + 1] if position + 1 < len(STEP_NAMES) else REVIEW
    return redirect(url_for(".review") if following == REVIEW else url_for(".step", step=following))


@bp.get("/")
def index() -> str:
    intakes = [i for i in registry().list_intakes() if i.status is IntakeStatus.OPEN]
    return render_template("index.html", intakes=intakes, signed_in="case_id" in session)


@bp.route("/intakes/<code>/register", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_REGISTER"], methods=["POST"])
def register(code: str) -> Any:
    intake = registry().get_intake(code)
    if "case_id" in session:
        return redirect(url_for(".resume"))
    if intake.status is not IntakeStatus.OPEN:  # no form to fill in for nothing
        status = 200 if request.method == "GET" else 409
        return render_template("intake_not_open.html", intake=intake), status
    if request.method == "GET":
        return render_step("about_you", values={}, errors={}, version=None, intake=intake)
    envelope, answers, errors = parse_step("about_you")
    pool, pool_errors = declared_pool(intake)
    errors.update(pool_errors)
    if errors:
        return render_step(
            "about_you", values=request.form, errors=errors, version=None, intake=intake, status=422
        )
    try:
        done = registry().register(
            code,
            answers,
            language=current_language(),
            idempotency_key=envelope["idempotency_key"],
            pool=pool,
        )
    except (domain.DuplicateRegistration, domain.IntakeNotOpen) as refused:
        status, message = describe(refused)
        return render_step(
            "about_you",
            values=request.form,
            errors={},
            version=None,
            intake=intake,
            banner=message,
            banner_links=(
                (url_for(".sign_in"), _("Sign in")),
                (url_for("recovery.ask"), _("Forgot your access code?")),
            )
            if isinstance(refused, domain.DuplicateRegistration)
            else (),
            status=status,
        )
    sign_in_session(done.case_id)
    session["credentials"] = {"reference": done.reference, "access_code": done.access_code}
    return redirect(url_for(".credentials", then=request.form.get("action", "continue")))


def declared_pool(intake: IntakeView) -> tuple[str, dict[str, list[str]]]:
    """The pool the register form's answer puts the person in (README, "Pools"): an intake with
    reserved pools asks, and wants an answer; one without puts everyone in the general pool."""
    if not intake.pools:
        return GENERAL_POOL, {}
    chosen = request.form.get("pool", "")
    if chosen != GENERAL_POOL and chosen not in intake.pools:
        return GENERAL_POOL, {
            "pool": [_("Select whether one of the reserved groups applies to you")]
        }
    return chosen, {}


@bp.get("/application/credentials")
def credentials() -> Any:
    case = signed_in_case()
    # Kept (for a language switch or a reload) until the applicant moves on; never shown again.
    shown = session.get("credentials")
    if shown is None:
        return redirect(url_for(".resume"))
    later = request.args.get("then") == "later"
    return render_template("credentials.html", case=case, credentials=shown, later=later)


@bp.get("/application")
def resume() -> Response:
    case = signed_in_case()
    session.pop("credentials", None)
    if not case.is_open:
        return redirect(url_for(".status"))
    if case.next_step == REVIEW:
        return redirect(url_for(".review"))
    return redirect(url_for(".step", step=case.next_step))


@bp.route("/application/steps/<step>", methods=["GET", "POST"])
def step(step: str) -> Any:
    if step not in STEP_NAMES:
        abort(404)
    case = signed_in_case()
    if not case.is_open:
        return redirect(url_for(".status", already=1 if case.submitted_at else None))
    if request.method == "GET":
        draft = case.drafts.get(step)
        return render_step(
            step,
            values={**case.answers.get(step, {}), **(draft or {})},
            errors=draft_errors(step, draft) if draft else {},
            version=case.version,
            intake=case.intake,
            case=case,
            banner=_(
                "You saved this page before it was complete. Your answers are kept; correct"
                " the ones marked, then save and continue."
            )
            if draft
            else None,
        )
    envelope, answers, errors = parse_step(step, names_only=step == "about_you")
    if errors and request.form.get("action") == "later" and drafts_allowed(errors):
        return keep_draft(case, step, envelope)
    if errors:
        return render_step(
            step,
            values=posted_values(case, step),
            errors=errors,
            case=case,
            version=envelope.get("version", case.version),
            intake=case.intake,
            status=422,
        )
    try:
        registry().save_step(
            case.id,
            step,
            answers,
            expected_version=envelope.get("version", 0),
            language=current_language(),
            idempotency_key=envelope["idempotency_key"],
        )
    except domain.StaleVersion as stale:
        return conflict_page(step, stale), 409
    return after_save(step)


def step_schema(step: str) -> Schema:
    return shared(NamesSchema) if step == "about_you" else shared(STEP_SCHEMAS[step])


def draft_errors(step: str, draft: dict[str, str]) -> dict[str, list[str]]:
    """What is still wrong with a kept draft, as the step's form would say it."""
    schema = step_schema(step)
    return parse(schema, {name: draft[name] for name in schema.fields if name in draft})[1]


def drafts_allowed(errors: dict[str, list[str]]) -> bool:
    """Only the answers may be incomplete: a post without its envelope is no draft to keep, and
    neither is text longer than a draft holds."""
    if set(errors) & set(shared(EnvelopeSchema).fields):
        return False
    return all(len(value) <= DRAFT_CHARS for value in request.form.values())


def keep_draft(case: CaseView, step: str, envelope: dict[str, Any]) -> Any:
    """ "Save and come back later" on a partly filled step: keep what was typed as a draft."""
    typed = {
        field.name: request.form[field.name]
        for field in STEP_FIELDS[step]
        if not field.locked and field.name in request.form
    }
    try:
        registry().save_draft(
            case.id,
            step,
            typed,
            expected_version=envelope.get("version", 0),
            language=current_language(),
            idempotency_key=envelope["idempotency_key"],
        )
    except domain.StaleVersion as stale:
        return conflict_page(step, stale), 409
    return redirect(url_for(".saved", draft=step))


def conflict_page(step: str, stale: domain.StaleVersion) -> str:
    """A save made from an out-of-date page: the answers saved now beside the ones typed, and a
    choice. The typed answers are never put back into the step's form under the new version (one
    more click would silently overwrite the newer answers); "Use the answers I typed" posts them
    with the version this page shows, so a further change elsewhere is refused again."""
    fresh = signed_in_case()
    language = current_language()
    saved = fresh.answers.get(step, {})
    rows, typed = [], {}
    for field in STEP_FIELDS[step]:
        if field.locked:
            continue
        mine = request.form.get(field.name)
        if field.kind == "checkbox":
            mine = "yes" if mine in ("yes", "on", "true") else None
            shown_mine = display(field, mine is not None, language)
        else:
            shown_mine = display(field, mine, language)
        if mine is not None:
            typed[field.name] = mine
        shown_saved = display(field, saved.get(field.name), language)
        rows.append((field.label, shown_saved, shown_mine, shown_saved != shown_mine))
    return render_template(
        "conflict.html",
        case=fresh,
        step=step,
        title=STEP_TITLES[step],
        rows=rows,
        typed=typed,
        version=stale.actual,
        idempotency_key=new_key(),
        back_to_review=request.form.get("return") == "review",
        banner=describe(stale)[1],
    )


@bp.get("/application/saved")
def saved() -> str:
    case = signed_in_case()
    return render_template("saved.html", case=case, draft=request.args.get("draft") in case.drafts)


@bp.get("/application/review")
def review() -> Any:
    case = signed_in_case()
    if not case.is_open:
        return _already_closed(case)
    return render_template("review.html", case=case, **_summary(case), idempotency_key=new_key())


@bp.post("/application/submit")
def submit() -> Any:
    case = signed_in_case()
    envelope, errors = parse(shared(EnvelopeSchema), request.form.to_dict())
    if errors or "version" not in envelope:
        abort(400)
    try:
        registry().submit(
            case.id,
            expected_version=envelope["version"],
            language=current_language(),
            idempotency_key=envelope["idempotency_key"],
        )
    except (domain.StaleVersion, domain.IncompleteRegistration, domain.CaseClosed) as refused:
        status, message = describe(refused)
        fresh = registry().get_case(case.id)
        if not fresh.is_open:  # sent from another tab or device: say so, offer no second submit
            return _already_closed(fresh)
        return render_template(
            "review.html", case=fresh, **_summary(fresh), banner=message, idempotency_key=new_key()
        ), status
    return redirect(url_for(".receipt"))


@bp.get("/application/receipt")
def receipt() -> Any:
    case = signed_in_case()
    if case.submitted_at is None:
        return redirect(url_for(".resume"))
    return render_template("receipt.html", case=case, **_summary(case), banner=_already_sent(case))


@bp.get("/application/status")
def status() -> str:
    case = signed_in_case()
    return _status_page(case, banner=_already_sent(case))


def _already_closed(case: CaseView) -> Response:
    """Where a page of a case that can no longer change sends the applicant instead."""
    if case.submitted_at is None:  # withdrawn before it was submitted
        return redirect(url_for(".status"))
    return redirect(url_for(".receipt", already=1))


def _already_sent(case: CaseView) -> str | None:
    """The banner of a page reached from a form of a registration that was already submitted."""
    if request.args.get("already") != "1" or case.submitted_at is None:
        return None
    return _(
        "Your registration was already submitted on %(when)s. It can no longer be changed "
        "or sent again.",
        when=local_time_filter(case.submitted_at, case.intake.time_zone),
    )


@bp.post("/application/requests/<request_id>")
def answer_request(request_id: str) -> Any:
    """The applicant's answer to an officer's request for information."""
    case = signed_in_case()
    envelope, errors = parse(shared(EnvelopeSchema), request.form.to_dict())
    form, form_errors = parse(shared(AnswerSchema), request.form.to_dict())
    errors.update(form_errors)
    if not errors:
        try:
            registry().provide_information(
                case.id,
                request_id,
                form["answer"],
                expected_version=envelope.get("version", 0),
                idempotency_key=envelope["idempotency_key"],
            )
        except (domain.StaleVersion, domain.NoOpenRequest) as refused:
            return _status_page(registry().get_case(case.id), banner=describe(refused)[1]), 409
        return redirect(url_for(".status"))
    return _status_page(case, errors=errors, answer=request.form.get("answer")), 422


def _status_page(case: CaseView, **extra: Any) -> str:
    try:
        allocation, unavailable = allocations().of_case(case.id), False
    except ReadModelUnavailable:
        current_app.logger.warning("allocation read model unavailable", exc_info=True)
        allocation, unavailable = None, True
    return render_template(
        "status.html",
        case=case,
        allocation=allocation,
        allocation_unavailable=unavailable,
        pool=pool_answer(case, current_language()) if case.intake.pools else None,
        idempotency_key=new_key(),
        **extra,
    )


@bp.route("/application/withdraw", methods=["GET", "POST"])
def withdraw() -> Any:
    case = signed_in_case()
    if case.status not in WITHDRAWABLE:
        return redirect(url_for(".status"))
    if request.method == "GET":
        return render_template(
            "withdraw.html", case=case, errors={}, values={}, idempotency_key=new_key()
        )
    envelope, envelope_errors = parse(shared(EnvelopeSchema), request.form.to_dict())
    form, errors = parse(shared(WithdrawSchema), request.form.to_dict())
    errors.update(envelope_errors)
    if errors:
        return render_template(
            "withdraw.html",
            case=case,
            errors=errors,
            values=request.form,
            idempotency_key=new_key(),
        ), 422
    try:
        registry().withdraw(
            case.id,
            expected_version=envelope.get("version", 0),
            reason=form["reason"],
            idempotency_key=envelope["idempotency_key"],
        )
    except domain.StaleVersion as stale:
        fresh = registry().get_case(case.id)
        return render_template(
            "withdraw.html",
            case=fresh,
            errors={},
            values=request.form,
            banner=describe(stale)[1],
            idempotency_key=new_key(),
        ), 409
    return redirect(url_for(".status"))


@bp.route("/sign-in", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_SIGNIN"], methods=["POST"])
def sign_in() -> Any:
    if request.method == "GET":
        ended = request.args.get("ended") == "code_changed"
        banner = str(CODE_CHANGED) if ended else None
        return render_template("sign_in.html", errors={}, values={}, banner=banner)
    form, errors = parse(shared(SignInSchema), request.form.to_dict())
    if errors:
        return render_template("sign_in.html", errors=errors, values=request.form), 422
    try:
        case_id = registry().sign_in(form["reference"], form["access_code"])
    except domain.SignInFailed as failed:
        return render_template(
            "sign_in.html",
            errors={},
            values={"reference": form["reference"]},
            banner=describe(failed)[1],
        ), 401
    sign_in_session(case_id)
    return redirect(url_for(".resume"))


@bp.post("/sign-out")
def sign_out() -> Response:
    language = session.get("lang")
    session.clear()  # Flask-Session deletes the stored session: the old cookie opens nothing
    if language:
        session["lang"] = language
    return redirect(url_for(".signed_out"))


@bp.get("/signed-out")
def signed_out() -> str:
    return render_template("signed_out.html")


def pool_answer(case: CaseView, language: str) -> str:
    if case.pool == GENERAL_POOL:
        return _("None of these (general places)")
    return case.intake.pool_label(case.pool, language)


def _summary(case: CaseView) -> dict[str, Any]:
    """The answers of every step, as (question, answer) rows, for review and receipt pages."""
    language = current_language()
    sections = []
    for step_name in STEP_NAMES:
        answers = case.answers.get(step_name, {})
        rows = [
            (f.label, display(f, answers.get(f.name), language)) for f in STEP_FIELDS[step_name]
        ]
        if step_name == "about_you" and case.intake.pools:  # declared at registration, for good
            rows.append((_("Reserved places"), pool_answer(case, language)))
        sections.append(
            {
                "step": step_name,
                "title": STEP_TITLES[step_name],
                "rows": rows,
                "done": step_name in case.answers,
                "draft": step_name in case.drafts,
            }
        )
    return {"sections": sections, "ready": case.next_step == REVIEW}


__all__ = ["bp"]
