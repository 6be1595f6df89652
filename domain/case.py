"""The Case aggregate: one person's file in one intake, from the first saved step onwards."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import (
    ApplicationIncomplete,
    CaseActionRefused,
    CaseClosed,
    DocumentNotFound,
    DocumentRefused,
    IdempotencyKeyReused,
    IdentityLocked,
    IncompleteRegistration,
    InvalidValue,
    NoOpenRequest,
    RecoveryLinkExpired,
    RecoveryLinkUsed,
)
from domain.identity import reference_index_id
from domain.values import (
    IDENTITY_FIELDS,
    MB,
    OFFICER_OPEN,
    STEPS,
    SYSTEM,
    WITHDRAWABLE,
    CaseStatus,
    DocumentView,
    InformationRequest,
    ScanState,
    Step,
)

DRAFT_FIELDS = 20  # more than any step has
DRAFT_CHARS = 1000  # per field: more than any field takes
DRAFT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class Case(Aggregate):
    """One applicant's case; its id comes from their identity, so each person has one per intake.

    Every saved step is one event. Each event records the idempotency key of the request that
    caused it, so a repeated request finds its outcome instead of writing again.
    """

    id: UUID  # given by the Registry: a keyed hash of the person's identity

    class Registered(Aggregate.Created):
        intake_id: UUID
        reference: str
        access_code_hash: str
        answers: dict[str, Any]
        language: str
        idempotency_key: str
        actor: str
        pool: str

    class StepSaved(Aggregate.Event):
        step: str
        answers: dict[str, Any]
        language: str
        idempotency_key: str
        actor: str

    class DraftSaved(Aggregate.Event):
        """A step kept as typed, not yet valid ("Save and come back later"): the values are the
        form's text, checked only when the step is saved for real or the case submitted."""

        step: str
        values: dict[str, str]
        language: str
        idempotency_key: str
        actor: str

    class Submitted(Aggregate.Event):
        intake_id: UUID  # carried so the allocator can route it without loading the case
        pool: str
        language: str
        idempotency_key: str
        actor: str

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Case)
            aggregate.status = CaseStatus.SUBMITTED
            aggregate.language = self.language
            aggregate.submitted_at = self.timestamp
            aggregate.outcomes[self.idempotency_key] = ("submit", self.originator_version)

    class Withdrawn(Aggregate.Event):
        intake_id: UUID
        reason: str
        idempotency_key: str
        actor: str

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Case)
            aggregate.status = CaseStatus.WITHDRAWN
            aggregate.withdrawn_at = self.timestamp
            aggregate.outcomes[self.idempotency_key] = ("withdraw", self.originator_version)

    class RecoveryRequested(Aggregate.Event):
        """Someone gave this case's reference (or passport details) and date of birth and asked
        for a link to set a new access code; the notifier sends the link to the email on file.

        The link's token is `domain.identity.recovery_token(key, case id, request_id)`; it works
        until `expires_at`, once, and only while no later request or reset has replaced it.
        """

        request_id: str  # 32 hex characters, random
        expires_at: datetime
        language: str  # of the page the request came from: the email is written in it
        actor: str

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Case)
            aggregate.recovery = (self.request_id, self.expires_at)

    class AccessCodeReset(Aggregate.Event):
        """A recovery link was followed: a new access code replaces the old (which stops
        working); the request it used is spent."""

        request_id: str
        access_code_hash: str
        idempotency_key: str
        actor: str

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Case)
            aggregate.access_code_hash = self.access_code_hash
            aggregate.recovery = None
            aggregate.outcomes[self.idempotency_key] = (
                "reset_access_code",
                self.originator_version,
            )

    # Officers' actions. Each names the officer (a staff member's id) and carries the idempotency
    # key of the request that caused it; those that change the allocation carry the intake id so
    # the allocator can route them without loading the case.

    class Assigned(Aggregate.Event):
        assignee_id: UUID | None  # None: back to the unassigned queue
        officer_id: UUID
        idempotency_key: str

    class InformationRequested(Aggregate.Event):
        request_id: str
        message: str
        officer_id: UUID
        idempotency_key: str

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Case)
            aggregate.requests.append(
                InformationRequest(
                    request_id=self.request_id,
                    message=self.message,
                    requested_at=self.timestamp,
                    officer_id=self.officer_id,
                )
            )
            aggregate.outcomes[self.idempotency_key] = (
                "request_information",
                self.originator_version,
            )

    class InformationProvided(Aggregate.Event):
        request_id: str
        answer: str
        idempotency_key: str
        actor: str

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Case)
            aggregate.requests = [
                replace(r, answer=self.answer, answered_at=self.timestamp)
                if r.request_id == self.request_id
                else r
                for r in aggregate.requests
            ]
            aggregate.outcomes[self.idempotency_key] = (
                "provide_information",
                self.originator_version,
            )

    class AcceptedForProcessing(Aggregate.Event):
        intake_id: UUID
        officer_id: UUID
        idempotency_key: str

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Case)
            _record_decision(aggregate, self, CaseStatus.ACCEPTED, "accept")

    class ReturnedIncomplete(Aggregate.Event):
        intake_id: UUID
        reasons: list[str]
        note: str
        officer_id: UUID
        idempotency_key: str

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Case)
            _record_decision(aggregate, self, CaseStatus.RETURNED, "return_incomplete")

    class Approved(Aggregate.Event):
        intake_id: UUID
        note: str
        officer_id: UUID
        idempotency_key: str

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Case)
            _record_decision(aggregate, self, CaseStatus.APPROVED, "approve")

    class Refused(Aggregate.Event):
        intake_id: UUID
        reasons: list[str]
        note: str
        officer_id: UUID
        idempotency_key: str

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Case)
            _record_decision(aggregate, self, CaseStatus.REFUSED, "refuse")

    # Stage two: the invited applicant's details and documents, then the application itself.
    # A document event records what the content inspection found, never a path from the client.

    class DetailsSaved(Aggregate.Event):
        section: str
        answers: dict[str, Any]
        language: str
        idempotency_key: str
        actor: str

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Case)
            merged = dict(aggregate.details.get(self.section, {}))
            merged.update(self.answers)
            aggregate.details[self.section] = merged
            aggregate.language = self.language
            aggregate.outcomes[self.idempotency_key] = ("save_details", self.originator_version)

    class DocumentAdded(Aggregate.Event):
        document_id: str
        item: str
        digest: str
        size: int
        media_type: str
        name: str  # the original file name, sanitised, for display only
        scan: str  # a ScanState value
        replaces: str | None  # the document this one replaces, if any
        idempotency_key: str
        actor: str

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Case)
            if self.replaces is not None:
                aggregate.documents.pop(self.replaces, None)
            aggregate.documents[self.document_id] = DocumentView(
                document_id=self.document_id,
                item=self.item,
                digest=self.digest,
                size=self.size,
                media_type=self.media_type,
                name=self.name,
                uploaded_at=self.timestamp,
                scan=ScanState(self.scan),
            )
            aggregate.document_count += 1
            aggregate.outcomes[self.idempotency_key] = ("add_document", self.originator_version)

    class DocumentRemoved(Aggregate.Event):
        document_id: str
        idempotency_key: str
        actor: str

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Case)
            aggregate.documents.pop(self.document_id, None)
            aggregate.outcomes[self.idempotency_key] = ("remove_document", self.originator_version)

    class DocumentScanned(Aggregate.Event):
        """The virus scanner's late verdict on a document recorded as pending scan."""

        document_id: str
        verdict: str  # ScanState.CLEAN or ScanState.INFECTED
        signature: str
        actor: str

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Case)
            found = aggregate.documents.get(self.document_id)
            if found is not None:
                aggregate.documents[self.document_id] = replace(found, scan=ScanState(self.verdict))

    class ApplicationSubmitted(Aggregate.Event):
        intake_id: UUID  # carried so the allocator can route it without loading the case
        documents: list[dict[str, Any]]  # item, document_id and digest of each, as sent
        language: str
        idempotency_key: str
        actor: str

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Case)
            aggregate.status = CaseStatus.APPLICATION_SUBMITTED
            aggregate.language = self.language
            aggregate.application_submitted_at = self.timestamp
            aggregate.outcomes[self.idempotency_key] = (
                "submit_application",
                self.originator_version,
            )

    @event(Registered)
    def __init__(
        self,
        intake_id: UUID,
        reference: str,
        access_code_hash: str,
        answers: dict[str, Any],
        language: str,
        idempotency_key: str,
        actor: str,
        pool: str,
    ) -> None:
        self.intake_id = intake_id
        self.pool = pool
        self.reference = reference
        self.access_code_hash = access_code_hash
        self.answers: dict[str, dict[str, Any]] = {Step.ABOUT_YOU.value: dict(answers)}
        self.drafts: dict[str, dict[str, str]] = {}  # step -> the form's text, not yet valid
        self.language = language
        self.registration_key = idempotency_key
        self.status = CaseStatus.DRAFT
        self.submitted_at: datetime | None = None
        self.withdrawn_at: datetime | None = None
        # idempotency key -> (command, version of the event it produced)
        self.outcomes: dict[str, tuple[str, int]] = {idempotency_key: ("register", 1)}
        self.assigned_to: UUID | None = None
        self.requests: list[InformationRequest] = []
        self.decided_at: datetime | None = None
        self.decision_reasons: list[str] = []
        self.decision_note = ""
        self.details: dict[str, dict[str, Any]] = {}
        self.documents: dict[str, DocumentView] = {}  # current documents, by id
        self.document_count = 0  # every document ever added: the next one's id
        self.application_submitted_at: datetime | None = None
        self.recovery: tuple[str, datetime] | None = None  # the open recovery request, if any

    # Queries

    def outcome_of(self, idempotency_key: str, command: str) -> int | None:
        """The version a request with this key produced, or None if no such request was seen."""
        seen = self.outcomes.get(idempotency_key)
        if seen is None:
            return None
        if seen[0] != command:
            raise IdempotencyKeyReused(f"key already used for {seen[0]}, not {command}")
        return seen[1]

    def check_recovery(self, request_id: str, now: datetime) -> None:
        """Refuse a recovery request that is not the open one, or has expired."""
        if self.recovery is None or self.recovery[0] != request_id:
            raise RecoveryLinkUsed("this recovery request was used or replaced by a newer one")
        if now >= self.recovery[1]:
            raise RecoveryLinkExpired(f"this recovery request expired at {self.recovery[1]}")

    def missing_steps(self) -> tuple[str, ...]:
        return tuple(step.value for step in STEPS if step.value not in self.answers)

    @property
    def reference_index_id(self) -> UUID:
        return reference_index_id(self.reference)

    # Commands

    def save_step(
        self, step: Step, answers: dict[str, Any], language: str, idempotency_key: str, actor: str
    ) -> None:
        self._require_draft()
        if step is Step.ABOUT_YOU:
            recorded = self.answers[Step.ABOUT_YOU.value]
            changed = [f for f in IDENTITY_FIELDS if f in answers and answers[f] != recorded[f]]
            if changed:
                raise IdentityLocked(f"cannot change {', '.join(changed)}")
            answers = {k: v for k, v in answers.items() if k not in IDENTITY_FIELDS}
        self._step_saved(
            step=step.value,
            answers=answers,
            language=language,
            idempotency_key=idempotency_key,
            actor=actor,
        )

    def save_draft(
        self, step: Step, values: dict[str, str], language: str, idempotency_key: str, actor: str
    ) -> None:
        """Keep a partly filled step as typed; a draft never counts as the step done."""
        self._require_draft()
        if len(values) > DRAFT_FIELDS or not all(
            isinstance(k, str)
            and DRAFT_NAME.match(k)
            and isinstance(v, str)
            and len(v) <= DRAFT_CHARS
            for k, v in values.items()
        ):
            raise InvalidValue("values", f"a draft is up to {DRAFT_FIELDS} fields of text")
        if step is Step.ABOUT_YOU:  # the identity is fixed at registration
            values = {k: v for k, v in values.items() if k not in IDENTITY_FIELDS}
        self._draft_saved(
            step=step.value,
            values=values,
            language=language,
            idempotency_key=idempotency_key,
            actor=actor,
        )

    def submit(self, language: str, idempotency_key: str, actor: str) -> None:
        self._require_draft()
        missing = self.missing_steps()
        if missing:
            raise IncompleteRegistration(missing)
        self.trigger_event(
            self.Submitted,
            intake_id=self.intake_id,
            pool=self.pool,
            language=language,
            idempotency_key=idempotency_key,
            actor=actor,
        )

    def withdraw(self, reason: str, idempotency_key: str, actor: str) -> None:
        if self.status is CaseStatus.WITHDRAWN:
            raise CaseClosed("the application is already withdrawn")
        if self.status not in WITHDRAWABLE:
            raise CaseClosed(f"the application is {self.status.value} and can no longer change")
        self.trigger_event(
            self.Withdrawn,
            intake_id=self.intake_id,
            reason=reason,
            idempotency_key=idempotency_key,
            actor=actor,
        )

    def request_recovery(
        self, request_id: str, expires_at: datetime, language: str, actor: str
    ) -> None:
        """Open a recovery request; it replaces any earlier one (whose link stops working)."""
        self.trigger_event(
            self.RecoveryRequested,
            request_id=request_id,
            expires_at=expires_at,
            language=language,
            actor=actor,
        )

    def reset_access_code(
        self,
        request_id: str,
        access_code_hash: str,
        now: datetime,
        idempotency_key: str,
        actor: str,
    ) -> None:
        """Replace the access code through the open recovery request `request_id`."""
        self.check_recovery(request_id, now)
        self.trigger_event(
            self.AccessCodeReset,
            request_id=request_id,
            access_code_hash=access_code_hash,
            idempotency_key=idempotency_key,
            actor=actor,
        )

    # Officers' commands: each checks where the case is, once; the appliers below only record.

    def assign(self, assignee_id: UUID | None, officer_id: UUID, idempotency_key: str) -> None:
        self._require_officer_open("assigned")
        if assignee_id == self.assigned_to:
            raise CaseActionRefused("the case is already assigned that way")
        self._assigned(
            assignee_id=assignee_id, officer_id=officer_id, idempotency_key=idempotency_key
        )

    def request_information(self, message: str, officer_id: UUID, idempotency_key: str) -> None:
        self._require_officer_open("sent a request for information")
        if self.open_request() is not None:
            raise CaseActionRefused("a request for information is already waiting for an answer")
        self.trigger_event(
            self.InformationRequested,
            request_id=f"r{len(self.requests) + 1}",
            message=message,
            officer_id=officer_id,
            idempotency_key=idempotency_key,
        )

    def provide_information(
        self, request_id: str, answer: str, idempotency_key: str, actor: str
    ) -> None:
        found = self.open_request()
        if found is None or found.request_id != request_id:
            raise NoOpenRequest(f"request {request_id} is not waiting for an answer")
        self.trigger_event(
            self.InformationProvided,
            request_id=request_id,
            answer=answer,
            idempotency_key=idempotency_key,
            actor=actor,
        )

    def accept_for_processing(
        self, officer_id: UUID, idempotency_key: str, *, holds_place: bool
    ) -> None:
        if self.status is not CaseStatus.APPLICATION_SUBMITTED:
            raise CaseActionRefused(
                f"only a submitted application is accepted, not a {self.status} one"
            )
        if not holds_place:
            raise CaseActionRefused("the case holds no place, so it cannot be accepted")
        self.trigger_event(
            self.AcceptedForProcessing,
            intake_id=self.intake_id,
            officer_id=officer_id,
            idempotency_key=idempotency_key,
        )

    def return_incomplete(
        self, reasons: list[str], note: str, officer_id: UUID, idempotency_key: str
    ) -> None:
        if self.status is not CaseStatus.APPLICATION_SUBMITTED:
            raise CaseActionRefused(
                f"only a submitted application is returned, not a {self.status} one"
            )
        self.trigger_event(
            self.ReturnedIncomplete,
            intake_id=self.intake_id,
            reasons=list(reasons),
            note=note,
            officer_id=officer_id,
            idempotency_key=idempotency_key,
        )

    def approve(self, note: str, officer_id: UUID, idempotency_key: str) -> None:
        self._require_accepted("approved")
        self.trigger_event(
            self.Approved,
            intake_id=self.intake_id,
            note=note,
            officer_id=officer_id,
            idempotency_key=idempotency_key,
        )

    def refuse(self, reasons: list[str], note: str, officer_id: UUID, idempotency_key: str) -> None:
        self._require_accepted("refused")
        self.trigger_event(
            self.Refused,
            intake_id=self.intake_id,
            reasons=list(reasons),
            note=note,
            officer_id=officer_id,
            idempotency_key=idempotency_key,
        )

    # Stage two: the Documents service checks the invitation (which the Ledger holds) and passes
    # what it found; the case checks what it knows itself.

    def save_details(
        self,
        section: str,
        answers: dict[str, Any],
        language: str,
        idempotency_key: str,
        actor: str,
    ) -> None:
        self._require_stage_two()
        self.trigger_event(
            self.DetailsSaved,
            section=section,
            answers=answers,
            language=language,
            idempotency_key=idempotency_key,
            actor=actor,
        )

    def add_document(
        self,
        document: DocumentView,
        replaces: str | None,
        idempotency_key: str,
        actor: str,
        *,
        max_files: int,
        case_bytes: int,
    ) -> None:
        """Record a stored document; `document_id` and `uploaded_at` of `document` are ignored."""
        self._require_documents_open()
        if replaces is not None and replaces not in self.documents:
            raise DocumentNotFound(f"no document {replaces} to replace")
        if replaces is not None and self.documents[replaces].item != document.item:
            raise CaseActionRefused("a document replaces one of the same checklist item")
        others = [d for d in self.documents.values() if d.document_id != replaces]
        if sum(1 for d in others if d.item == document.item) >= max_files:
            raise DocumentRefused(
                "too_many_files", f"You can upload at most {max_files} files for this item"
            )
        if sum(d.size for d in others) + document.size > case_bytes:
            raise DocumentRefused(
                "case_too_large",
                f"Your documents together must be smaller than {case_bytes // MB} MB",
            )
        self.trigger_event(
            self.DocumentAdded,
            document_id=f"d{self.document_count + 1}",
            item=document.item,
            digest=document.digest,
            size=document.size,
            media_type=document.media_type,
            name=document.name,
            scan=document.scan.value,
            replaces=replaces,
            idempotency_key=idempotency_key,
            actor=actor,
        )

    def remove_document(self, document_id: str, idempotency_key: str, actor: str) -> None:
        self._require_documents_open()
        if document_id not in self.documents:
            raise DocumentNotFound(f"no document {document_id}")
        self.trigger_event(
            self.DocumentRemoved,
            document_id=document_id,
            idempotency_key=idempotency_key,
            actor=actor,
        )

    def record_scan(self, document_id: str, verdict: ScanState, signature: str) -> None:
        found = self.documents.get(document_id)
        if found is None or found.scan is not ScanState.PENDING:
            raise CaseActionRefused(f"document {document_id} is not waiting for a scan")
        self.trigger_event(
            self.DocumentScanned,
            document_id=document_id,
            verdict=verdict.value,
            signature=signature,
            actor=SYSTEM,
        )

    def submit_application(
        self,
        sections: tuple[str, ...],
        required_items: tuple[str, ...],
        language: str,
        idempotency_key: str,
        actor: str,
    ) -> None:
        self._require_stage_two()
        present = {d.item for d in self.documents.values() if d.present}
        missing_sections = tuple(s for s in sections if s not in self.details)
        missing_items = tuple(i for i in required_items if i not in present)
        if missing_sections or missing_items:
            raise ApplicationIncomplete(missing_sections, missing_items)
        self.trigger_event(
            self.ApplicationSubmitted,
            intake_id=self.intake_id,
            documents=[
                {"item": d.item, "document_id": d.document_id, "digest": d.digest}
                for d in self.documents.values()
            ],
            language=language,
            idempotency_key=idempotency_key,
            actor=actor,
        )

    def _require_stage_two(self) -> None:
        """Only a registered case (its invitation checked by the caller) completes stage two."""
        if self.status is not CaseStatus.SUBMITTED:
            raise CaseClosed(f"the application is {self.status.value} and can no longer change")

    def _require_documents_open(self) -> None:
        """Documents change before the application is sent, or to answer an officer's request."""
        if self.status is CaseStatus.SUBMITTED:
            return
        if self.status in OFFICER_OPEN and self.open_request() is not None:
            return
        raise CaseClosed(f"the application is {self.status.value} and can no longer change")

    def open_request(self) -> InformationRequest | None:
        for request in self.requests:
            if request.answer is None:
                return request
        return None

    def _require_officer_open(self, what: str) -> None:
        if self.status not in OFFICER_OPEN:
            raise CaseActionRefused(f"a {self.status} case cannot be {what}")

    def _require_accepted(self, what: str) -> None:
        if self.status is not CaseStatus.ACCEPTED:
            raise CaseActionRefused(
                f"only a case accepted for processing is {what}, not a {self.status} one"
            )

    def _require_draft(self) -> None:
        if self.status is not CaseStatus.DRAFT:
            raise CaseClosed(f"the application is {self.status.value} and can no longer change")

    # Appliers only change state, because they re-run on every reload (Submitted and Withdrawn
    # apply in their event classes, which also see the event's timestamp).

    @event(StepSaved)
    def _step_saved(
        self, step: str, answers: dict[str, Any], language: str, idempotency_key: str, actor: str
    ) -> None:
        merged = dict(self.answers.get(step, {}))
        merged.update(answers)
        self.answers[step] = merged
        self.drafts.pop(step, None)  # saved for real: the draft is done with
        self.language = language
        self.outcomes[idempotency_key] = ("save_step", self.version + 1)

    @event(DraftSaved)
    def _draft_saved(
        self, step: str, values: dict[str, str], language: str, idempotency_key: str, actor: str
    ) -> None:
        self.drafts[step] = dict(values)
        self.language = language
        self.outcomes[idempotency_key] = ("save_draft", self.version + 1)

    @event(Assigned)
    def _assigned(self, assignee_id: UUID | None, officer_id: UUID, idempotency_key: str) -> None:
        self.assigned_to = assignee_id
        self.outcomes[idempotency_key] = ("assign", self.version + 1)


def _record_decision(case: Case, e: Any, status: CaseStatus, command: str) -> None:
    """What every decision event changes: the status, its outcome, and for a final decision its
    time, reasons and note (accepting for processing decides nothing yet)."""
    case.status = status
    case.outcomes[e.idempotency_key] = (command, e.originator_version)
    if status is not CaseStatus.ACCEPTED:
        case.decided_at = e.timestamp
        case.decision_reasons = list(getattr(e, "reasons", []))
        case.decision_note = getattr(e, "note", "")


class CaseReference(Aggregate):
    """Points a reference at its case; one per reference, so two cases never share one."""

    class Assigned(Aggregate.Created):
        reference: str
        case_id: UUID

    @staticmethod
    def create_id(reference: str) -> UUID:
        return reference_index_id(reference)

    @event(Assigned)
    def __init__(self, reference: str, case_id: UUID) -> None:
        self.reference = reference
        self.case_id = case_id
