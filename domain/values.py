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


class CaseStatus(StrEnum):
    """Where a case is in its life (the allocator adds later states)."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    WITHDRAWN = "withdrawn"


class Step(StrEnum):
    """The registration form's steps, in the order an applicant meets them."""

    ABOUT_YOU = "about_you"
    CONTACT = "contact"
    ELIGIBILITY = "eligibility"


STEPS: tuple[Step, ...] = (Step.ABOUT_YOU, Step.CONTACT, Step.ELIGIBILITY)
REVIEW = "review"
LANGUAGES: tuple[str, ...] = ("en", "fr")
APPLICANT = "applicant"
SYSTEM = "system"
GENERAL_POOL = "general"

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
    """What a command on an existing case returns; the same for a replayed idempotency key."""

    case_id: UUID
    command: str
    version: int
    replayed: bool
