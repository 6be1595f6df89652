"""Stage two of a case: the invited applicant's details, documents and application.

The Documents service sits beside the Registry as Casework does: it owns the rules of stage two
(an invitation still running, the intake's checklist and limits, files checked by content) and
writes through `Registry.decide`, so idempotency, conflicts and group commit behave as they do
for every other change to a case.

An upload is acknowledged only once its blob is fsynced under its digest and its event is
committed; a failure at any point before leaves at most an unreferenced blob, which the
collector deletes after a grace period.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO, Protocol
from uuid import UUID

from domain.errors import (
    CaseClosed,
    ChecklistItemNotFound,
    DeadlinePassed,
    DocumentNotFound,
    DocumentRefused,
    InvalidValue,
    NotInvited,
    ScannerUnavailable,
)
from domain.registry import Registry
from domain.storage import BlobStore, Inspector, Scanner
from domain.values import (
    APPLICANT,
    LANGUAGES,
    MB,
    CaseStatus,
    CaseView,
    ChecklistItem,
    DocumentView,
    Outcome,
    ScanState,
)


class Offers(Protocol):
    """Where the service learns a case's invitation (the allocation read model)."""

    def offer_deadline(self, case_id: UUID) -> datetime | None: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class StageTwo:
    """What an applicant's stage-two pages show: the case, and where its invitation stands."""

    case: CaseView
    deadline: datetime | None  # of the running invitation; None once sent or never invited
    open: bool  # details and documents may change, and the application may be sent

    @property
    def expired(self) -> bool:
        """True when the case was invited but sent nothing in time (the place went on)."""
        return self.case.status is CaseStatus.SUBMITTED and self.deadline is None


@dataclass(frozen=True)
class DocumentOutcome:
    """What recording an upload returns: the command's outcome and the new document's id."""

    outcome: Outcome
    document_id: str


class Documents:
    """Invited applicants complete their application and upload the intake's checklist."""

    def __init__(
        self,
        registry: Registry,
        store: BlobStore,
        inspector: Inspector,
        offers: Offers,
        *,
        scanner: Scanner | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._registry = registry
        self.store = store
        self._inspector = inspector
        self._offers = offers
        self._scanner = scanner
        self._clock = clock

    # Queries

    def stage_two(self, case_id: UUID) -> StageTwo:
        case = self._registry.get_case(case_id)
        deadline = self._deadline(case_id) if case.status is CaseStatus.SUBMITTED else None
        may_change = deadline is not None and self._clock() < deadline
        return StageTwo(case=case, deadline=deadline, open=may_change)

    def open_document(self, case_id: UUID, document_id: str) -> tuple[DocumentView, BinaryIO]:
        """A current document of the case and its content; DocumentNotFound if it has none."""
        document = self._registry.get_case(case_id).document(document_id)
        if document is None:
            raise DocumentNotFound(f"no document {document_id}")
        if document.scan is ScanState.INFECTED:
            raise DocumentNotFound(f"document {document_id} contains a virus")
        return document, self.store.open(document.digest)

    # Commands

    def save_details(
        self,
        case_id: UUID,
        section: str,
        answers: Mapping[str, Any],
        *,
        expected_version: int,
        language: str,
        idempotency_key: str,
    ) -> Outcome:
        _check_language(language)
        replay = self._registry.replayed(case_id, idempotency_key, "save_details")
        if replay is not None:
            return replay
        case = self._registry.get_case(case_id)
        if section not in case.intake.sections:
            raise InvalidValue("section", f"this intake asks for no section {section}")
        self._require_invited(case)
        return self._registry.decide(
            case_id,
            "save_details",
            expected_version,
            idempotency_key,
            lambda c: c.save_details(section, dict(answers), language, idempotency_key, APPLICANT),
        )

    def add_document(
        self,
        case_id: UUID,
        item_key: str,
        source: BinaryIO,
        name: str,
        *,
        idempotency_key: str,
        replaces: str | None = None,
    ) -> DocumentOutcome:
        """Check, store and record one file for a checklist item (or in place of a document).

        A retry with the same key records nothing more and reads nothing of `source`.
        """
        replay = self._registry.replayed(case_id, idempotency_key, "add_document")
        if replay is not None:
            return self._document_outcome(replay)
        case = self._registry.get_case(case_id)
        item = _item(case, item_key)
        self._require_documents_open(case)
        try:
            return self._store_and_record(case, item, source, name, idempotency_key, replaces)
        except DocumentRefused as refused:
            refused.params.setdefault("mb", _megabytes(item.max_bytes))
            refused.params["allowed"] = ",".join(item.types)  # the web lists them translated
            raise

    def _store_and_record(
        self,
        case: CaseView,
        item: ChecklistItem,
        source: BinaryIO,
        name: str,
        idempotency_key: str,
        replaces: str | None,
    ) -> DocumentOutcome:
        case_id = case.id
        display_name = self._inspector.check_name(name)
        with self.store.receive(source, limit=item.max_bytes) as received:
            media_type = self._inspector.inspect(received.path, item.types)
            scan = self._scan_state(received.path)
            document = DocumentView(
                document_id="",  # the case numbers it
                item=item.key,
                digest=received.digest,
                size=received.size,
                media_type=media_type,
                name=display_name,
                uploaded_at=self._clock(),
                scan=scan,
            )
            with self.store.commit(received):
                outcome = self._registry.decide(
                    case_id,
                    "add_document",
                    None,
                    idempotency_key,
                    lambda c: c.add_document(
                        document,
                        replaces,
                        idempotency_key,
                        APPLICANT,
                        max_files=item.max_files,
                        case_bytes=case.intake.case_document_bytes,
                    ),
                )
        return self._document_outcome(outcome)

    def remove_document(self, case_id: UUID, document_id: str, *, idempotency_key: str) -> Outcome:
        replay = self._registry.replayed(case_id, idempotency_key, "remove_document")
        if replay is not None:
            return replay
        self._require_documents_open(self._registry.get_case(case_id))
        return self._registry.decide(
            case_id,
            "remove_document",
            None,
            idempotency_key,
            lambda c: c.remove_document(document_id, idempotency_key, APPLICANT),
        )

    def submit_application(
        self, case_id: UUID, *, expected_version: int, language: str, idempotency_key: str
    ) -> Outcome:
        """Send stage two: every section saved and every required item present, in time."""
        _check_language(language)
        replay = self._registry.replayed(case_id, idempotency_key, "submit_application")
        if replay is not None:
            return replay
        case = self._registry.get_case(case_id)
        self._require_invited(case)
        required = tuple(i.key for i in case.intake.checklist if i.required)
        return self._registry.decide(
            case_id,
            "submit_application",
            expected_version,
            idempotency_key,
            lambda c: c.submit_application(
                case.intake.sections, required, language, idempotency_key, APPLICANT
            ),
        )

    def rescan(self, case_id: UUID, document_id: str) -> ScanState:
        """Ask the scanner again about a document recorded as pending scan, and record its
        verdict; ScannerUnavailable if it still cannot answer (the document stays pending)."""
        if self._scanner is None:
            raise ScannerUnavailable("no virus scanner is configured")
        document, content = self.open_document(case_id, document_id)
        with content, self.store.receive(content, limit=document.size) as copy:
            verdict = self._scanner.scan(copy.path)
        state = ScanState.CLEAN if verdict.clean else ScanState.INFECTED
        self._registry.decide(
            case_id,
            "record_scan",
            None,
            f"scan:{document_id}",
            lambda c: c.record_scan(document_id, state, verdict.signature),
        )
        return state

    # Internals

    def _document_outcome(self, outcome: Outcome) -> DocumentOutcome:
        at = self._registry.get_case(outcome.case_id, version=outcome.version)
        return DocumentOutcome(outcome, f"d{at.document_count}")

    def _deadline(self, case_id: UUID) -> datetime | None:
        deadline = self._offers.offer_deadline(case_id)
        if deadline is not None and deadline.tzinfo is None:
            deadline = deadline.replace(tzinfo=UTC)  # SQLite keeps times without their zone
        return deadline

    def _require_invited(self, case: CaseView) -> None:
        if case.status is not CaseStatus.SUBMITTED:
            raise CaseClosed(f"the application is {case.status.value} and can no longer change")
        deadline = self._deadline(case.id)
        if deadline is None:
            raise NotInvited("this case holds no running invitation")
        if self._clock() >= deadline:
            raise DeadlinePassed(f"the invitation's deadline passed at {deadline.isoformat()}")

    def _require_documents_open(self, case: CaseView) -> None:
        """Before the application is sent, the invitation must still run; afterwards documents
        change only to answer an officer's open request (the case checks that)."""
        if case.status is CaseStatus.SUBMITTED:
            self._require_invited(case)

    def _scan_state(self, path: Any) -> ScanState:
        if self._scanner is None:
            return ScanState.NOT_SCANNED
        try:
            verdict = self._scanner.scan(path)
        except ScannerUnavailable:
            return ScanState.PENDING  # fail closed: it never counts as present until clean
        if not verdict.clean:
            raise DocumentRefused("infected", "The selected file contains a virus")
        return ScanState.CLEAN


def _item(case: CaseView, key: str) -> ChecklistItem:
    item = case.intake.checklist_item(key)
    if item is None:
        raise ChecklistItemNotFound(f"the checklist has no item {key}")
    return item


def _megabytes(size: int) -> str:
    return f"{size / MB:g}"


def _check_language(language: str) -> None:
    if language not in LANGUAGES:
        raise InvalidValue("language", f"must be one of {', '.join(LANGUAGES)}")
