"""Enums and small frozen value types shared by events, the Registry's queries and read models."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID


class Policy(StrEnum):
    """How an intake allocates its places."""

    FIRST_COME = "first_come"
    LOTTERY = "lottery"


class IntakeStatus(StrEnum):
    """Where an intake is in its life: defined, open for registrations, or closed."""

    DEFINED = "defined"
    OPEN = "open"
    CLOSED = "closed"


class DrawMode(StrEnum):
    """Where a lottery's randomness comes from (fixed at opening; README, "The lottery")."""

    BEACON = "beacon"  # a public beacon round fixed at opening, with a secret committed then
    OPERATOR = "operator"  # no beacon reachable: a value the operator supplies after the close
    LEGACY = "legacy"  # intakes opened before 2026-12-04: a seed committed at opening


class UnusedReserved(StrEnum):
    """What happens to a reserved pool's places nobody in the pool takes."""

    KEPT = "kept"  # they stay in the pool (intakes defined before 2026-12-04)
    TO_GENERAL = "to_general"  # they move to the general pool (README, "Reserved pools")


class CaseStatus(StrEnum):
    """Where a case is in its life (the allocator keeps where it stands for a place)."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    WITHDRAWN = "withdrawn"
    APPLICATION_SUBMITTED = "application_submitted"  # stage two sent: details and documents
    ACCEPTED = "accepted"  # accepted for processing: complete, the place is kept
    RETURNED = "returned"  # returned as incomplete: the place went back to the waitlist
    APPROVED = "approved"
    REFUSED = "refused"


# Where officers may still act on a case (assign, request information, decide).
OFFICER_OPEN: frozenset[CaseStatus] = frozenset(
    {CaseStatus.SUBMITTED, CaseStatus.APPLICATION_SUBMITTED, CaseStatus.ACCEPTED}
)
# Where an applicant may still withdraw.
WITHDRAWABLE: frozenset[CaseStatus] = frozenset(
    {
        CaseStatus.DRAFT,
        CaseStatus.SUBMITTED,
        CaseStatus.APPLICATION_SUBMITTED,
        CaseStatus.ACCEPTED,
    }
)


class StaffRole(StrEnum):
    """What a staff member may do: officers decide cases, auditors only read, admins run staff."""

    OFFICER = "officer"
    AUDITOR = "auditor"
    ADMIN = "admin"


# Reason codes officers choose from; the UI translates each (web/officer_labels.py).
REFUSAL_REASONS: tuple[str, ...] = (
    "language_below_minimum",
    "work_experience_insufficient",
    "education_not_equivalent",
    "job_offer_not_genuine",
    "inadmissible",
    "misrepresentation",
    "other",
)
RETURN_REASONS: tuple[str, ...] = (
    "documents_missing",
    "form_incomplete",
    "fee_not_paid",
    "identity_unclear",
    "other",
)


class Step(StrEnum):
    """The registration form's steps, in the order an applicant meets them."""

    ABOUT_YOU = "about_you"
    CONTACT = "contact"
    ELIGIBILITY = "eligibility"


STEPS: tuple[Step, ...] = (Step.ABOUT_YOU, Step.CONTACT, Step.ELIGIBILITY)
REVIEW = "review"
LANGUAGES: tuple[str, ...] = ("en", "fr")
# The zone an intake's times are shown in when its definition names none (IANA name).
DEFAULT_TIME_ZONE = "America/Toronto"
APPLICANT = "applicant"
SYSTEM = "system"
GENERAL_POOL = "general"


def default_pool_label(name: str) -> dict[str, str]:
    """What an applicant is asked for a pool defined without a label: its name, readable."""
    text = name.replace("_", " ").capitalize()
    return {"en": text, "fr": text}


# The identity fields of the about-you step: they decide the case id, so they never change.
IDENTITY_FIELDS: tuple[str, ...] = ("passport_number", "passport_country", "date_of_birth")


@dataclass(frozen=True)
class Identity:
    """The facts that make one person one case per intake."""

    passport_number: str
    passport_country: str
    date_of_birth: date

    def normalised(self) -> str:
        """A canonical string: letters and digits of the passport number, upper case."""
        number = "".join(ch for ch in self.passport_number.upper() if ch.isalnum())
        return f"{number}|{self.passport_country.upper()}|{self.date_of_birth.isoformat()}"


@dataclass(frozen=True)
class IntakeView:
    """One intake as applicants and operators see it."""

    id: UUID
    code: str
    name: str
    stream: str
    capacity: int
    policy: Policy
    opens_at: datetime | None
    closes_at: datetime | None
    document_deadline_days: int
    waitlist_length: int
    pools: dict[str, int]
    status: IntakeStatus
    version: int
    checklist: tuple[ChecklistItem, ...] = field(default=())
    sections: tuple[str, ...] = field(default=())
    case_document_bytes: int = 0
    seed_commitment: str = ""  # a lottery's, recorded at opening
    seed: str = ""  # a legacy lottery's, revealed at the close
    pool_labels: dict[str, dict[str, str]] = field(default_factory=dict)  # pool -> {lang: text}
    unused_reserved: UnusedReserved = UnusedReserved.KEPT
    draw: dict[str, Any] = field(default_factory=dict)  # fixed at opening (Intake.Opened.draw)
    draw_inputs: dict[str, Any] = field(default_factory=dict)  # recorded after the close
    closed_at: datetime | None = None  # when Intake.Closed was recorded
    time_zone: str = DEFAULT_TIME_ZONE  # IANA name: the zone the intake's times are shown in

    def pool_label(self, pool: str, language: str) -> str:
        label = self.pool_labels.get(pool) or default_pool_label(pool)
        return label.get(language) or label.get("en") or pool

    def checklist_item(self, key: str) -> ChecklistItem | None:
        for item in self.checklist:
            if item.key == key:
                return item
        return None


@dataclass(frozen=True)
class CaseView:
    """One applicant's case as the applicant sees it: never carries the access code hash."""

    id: UUID
    intake: IntakeView
    reference: str
    status: CaseStatus
    language: str
    version: int
    answers: dict[str, dict[str, Any]]
    registered_at: datetime
    submitted_at: datetime | None
    withdrawn_at: datetime | None
    steps_done: tuple[str, ...] = field(default=())
    pool: str = GENERAL_POOL
    drafts: dict[str, dict[str, str]] = field(default_factory=dict)  # step -> text, not yet valid
    assigned_to: UUID | None = None
    requests: tuple[InformationRequest, ...] = field(default=())
    decided_at: datetime | None = None
    decision_reasons: tuple[str, ...] = field(default=())
    decision_note: str = ""
    details: dict[str, dict[str, Any]] = field(default_factory=dict)
    documents: tuple[DocumentView, ...] = field(default=())
    application_submitted_at: datetime | None = None
    document_count: int = 0  # documents ever added; the latest has the id f"d{document_count}"

    def documents_for(self, item: str) -> tuple[DocumentView, ...]:
        return tuple(d for d in self.documents if d.item == item)

    def document(self, document_id: str) -> DocumentView | None:
        for found in self.documents:
            if found.document_id == document_id:
                return found
        return None

    @property
    def missing_items(self) -> tuple[str, ...]:
        """Required checklist items without a document that counts as present."""
        present = {d.item for d in self.documents if d.present}
        return tuple(i.key for i in self.intake.checklist if i.required and i.key not in present)

    @property
    def missing_sections(self) -> tuple[str, ...]:
        return tuple(s for s in self.intake.sections if s not in self.details)

    @property
    def open_request(self) -> InformationRequest | None:
        """The officer's request still waiting for the applicant's answer, if any."""
        for request in self.requests:
            if request.answer is None:
                return request
        return None

    @property
    def next_step(self) -> str:
        """The first step without saved answers, or the review page when all are saved."""
        for step in STEPS:
            if step not in self.steps_done:
                return step.value
        return REVIEW

    @property
    def is_open(self) -> bool:
        """True while the applicant may still change the registration."""
        return self.status is CaseStatus.DRAFT


@dataclass(frozen=True)
class Registration:
    """What registering returns: the access code is in clear only here, once."""

    case_id: UUID
    reference: str
    access_code: str
    version: int
    replayed: bool


@dataclass(frozen=True)
class Outcome:
    """What a command on an existing case returns; the same for a replayed idempotency key.

    `position` is the Registry log's notification id of the event the command recorded (None for
    a replay), so a page can wait for the read models to reach it.
    """

    case_id: UUID
    command: str
    version: int
    replayed: bool
    position: int | None = None


@dataclass(frozen=True)
class InformationRequest:
    """An officer's request for information on a case, and the applicant's answer once given."""

    request_id: str
    message: str
    requested_at: datetime
    officer_id: UUID
    answer: str | None = None
    answered_at: datetime | None = None


@dataclass(frozen=True)
class BulkOutcome:
    """What a bulk action did: the cases it changed, and each one it skipped with why."""

    done: tuple[UUID, ...]
    skipped: tuple[tuple[UUID, str], ...]
    position: int | None


@dataclass(frozen=True)
class StaffView:
    """A staff member as the staff pages see them: never carries hashes or second-factor secrets."""

    id: UUID
    email: str
    name: str
    role: StaffRole
    enrolled: bool
    disabled: bool
    locked_until: datetime | None
    active_sessions: int
    added_at: datetime
    version: int


@dataclass(frozen=True)
class StaffSession:
    """A staff sign-in: `token` is in clear only here, once; the store keeps its hash."""

    staff_id: UUID
    token: str
    expires_at: datetime


# Stage two: what an invited applicant completes and uploads before the invitation's deadline.


class Section(StrEnum):
    """The parts of the full application an invited applicant completes (stage two)."""

    WORK_HISTORY = "work_history"
    LANGUAGE_TEST = "language_test"
    EDUCATION = "education"
    JOB_OFFER = "job_offer"


DEFAULT_SECTIONS: tuple[str, ...] = tuple(s.value for s in Section)

# Document types an intake may allow, detected from the content: token -> media type.
DOCUMENT_TYPES: dict[str, str] = {
    "pdf": "application/pdf",
    "jpeg": "image/jpeg",
    "png": "image/png",
}
MB = 1024 * 1024


@dataclass(frozen=True)
class ChecklistItem:
    """One document an intake asks for: its names, whether it is required, types and size."""

    key: str
    name_en: str
    name_fr: str
    required: bool = True
    types: tuple[str, ...] = ("pdf", "jpeg", "png")
    max_bytes: int = 10 * MB
    max_files: int = 5

    def name(self, language: str) -> str:
        return self.name_fr if language == "fr" else self.name_en

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name_en": self.name_en,
            "name_fr": self.name_fr,
            "required": self.required,
            "types": list(self.types),
            "max_bytes": self.max_bytes,
            "max_files": self.max_files,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChecklistItem:
        return cls(
            key=str(data["key"]),
            name_en=str(data["name_en"]),
            name_fr=str(data["name_fr"]),
            required=bool(data.get("required", True)),
            types=tuple(data.get("types", ("pdf", "jpeg", "png"))),
            max_bytes=int(data.get("max_bytes", 10 * MB)),
            max_files=int(data.get("max_files", 5)),
        )


# The pilot's checklist, for intakes that define none.
DEFAULT_CHECKLIST: tuple[ChecklistItem, ...] = (
    ChecklistItem("identity", "Identity document (passport)", "Pièce d'identité (passeport)"),
    ChecklistItem("language_test", "Language test result", "Résultat du test de langue"),
    ChecklistItem("education", "Education credential", "Diplôme ou attestation d'études"),
    ChecklistItem("care_work", "Proof of care work", "Preuve du travail de soins"),
    ChecklistItem("police", "Police certificate", "Certificat de police"),
)
DEFAULT_CASE_DOCUMENT_BYTES = 100 * MB  # all of one case's current documents together


class ScanState(StrEnum):
    """Whether a document was checked for viruses: only `clean` or `not_scanned` count as present."""

    CLEAN = "clean"
    NOT_SCANNED = "not_scanned"  # no virus scanner is configured
    PENDING = "pending"  # a scanner is configured but has not given a verdict yet
    INFECTED = "infected"


@dataclass(frozen=True)
class DocumentView:
    """One document on a case: what its event recorded (the name is for display only)."""

    document_id: str
    item: str
    digest: str  # SHA-256 of the content, hex
    size: int
    media_type: str
    name: str
    uploaded_at: datetime
    scan: ScanState

    @property
    def present(self) -> bool:
        """Whether it counts towards the checklist: never without a clean verdict when scanned."""
        return self.scan in (ScanState.CLEAN, ScanState.NOT_SCANNED)
