"""The Intake aggregate: one round of a program, with its capacity, window and policy."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import IntakeStateError
from domain.identity import NAMESPACE
from domain.values import (
    DEFAULT_CASE_DOCUMENT_BYTES,
    DEFAULT_CHECKLIST,
    DEFAULT_SECTIONS,
    ChecklistItem,
    IntakeStatus,
    Policy,
)


class Intake(Aggregate):
    """One round of a program: a fixed number of places, a window, and how places are allocated."""

    seed = ""  # a lottery's seed, revealed at the close (a class default: older snapshots)

    class Defined(Aggregate.Created):
        code: str
        name: str
        stream: str
        capacity: int
        policy: str
        opens_at: datetime | None
        closes_at: datetime | None
        document_deadline_days: int
        waitlist_length: int
        pools: dict[str, int]
        actor: str
        # Stage two (version 2): what invited applicants complete and upload.
        checklist: list[dict[str, Any]]
        sections: list[str]
        case_document_bytes: int

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Intakes defined before stage two existed ask for the pilot's defaults."""
            state["checklist"] = [item.as_dict() for item in DEFAULT_CHECKLIST]
            state["sections"] = list(DEFAULT_SECTIONS)
            state["case_document_bytes"] = DEFAULT_CASE_DOCUMENT_BYTES

    class Opened(Aggregate.Event):
        actor: str
        seed_commitment: str  # lottery: SHA-256 of the secret seed; empty for first come

    class Closed(Aggregate.Event):
        actor: str
        seed: str  # lottery: the seed revealed for the draw; empty for first come

    class DeadlinesChecked(Aggregate.Event):
        """Time passing, recorded: the allocator expires offers whose deadline is before `at`."""

        at: datetime
        actor: str

    @staticmethod
    def create_id(code: str) -> UUID:
        return uuid5(NAMESPACE, f"intake:{code}")

    @event(Defined)
    def __init__(
        self,
        code: str,
        name: str,
        stream: str,
        capacity: int,
        policy: str,
        opens_at: datetime | None,
        closes_at: datetime | None,
        document_deadline_days: int,
        waitlist_length: int,
        pools: dict[str, int],
        actor: str,
        checklist: list[dict[str, Any]],
        sections: list[str],
        case_document_bytes: int,
    ) -> None:
        self.code = code
        self.checklist = tuple(ChecklistItem.from_dict(item) for item in checklist)
        self.sections = tuple(sections)
        self.case_document_bytes = case_document_bytes
        self.pools = dict(pools)
        self.name = name
        self.stream = stream
        self.capacity = capacity
        self.policy = Policy(policy)
        self.opens_at = opens_at
        self.closes_at = closes_at
        self.document_deadline_days = document_deadline_days
        self.waitlist_length = waitlist_length
        self.status = IntakeStatus.DEFINED
        self.seed_commitment = ""
        self.last_checked: datetime | None = None

    def open(self, actor: str, seed_commitment: str) -> None:
        if self.status is not IntakeStatus.DEFINED:
            raise IntakeStateError(f"intake {self.code} is {self.status}, only a defined one opens")
        self._opened(actor=actor, seed_commitment=seed_commitment)

    def close(self, actor: str, seed: str) -> None:
        if self.status is not IntakeStatus.OPEN:
            raise IntakeStateError(f"intake {self.code} is {self.status}, only an open one closes")
        self._closed(actor=actor, seed=seed)

    def check_deadlines(self, at: datetime, actor: str) -> None:
        if self.last_checked is not None and at <= self.last_checked:
            raise IntakeStateError(f"deadlines of {self.code} were checked at {self.last_checked}")
        self._deadlines_checked(at=at, actor=actor)

    def accepts_registrations(self, now: datetime) -> bool:
        if self.status is not IntakeStatus.OPEN:
            return False
        return self.closes_at is None or now < self.closes_at

    @event(Opened)
    def _opened(self, actor: str, seed_commitment: str) -> None:
        self.status = IntakeStatus.OPEN
        self.seed_commitment = seed_commitment

    @event(Closed)
    def _closed(self, actor: str, seed: str) -> None:
        self.status = IntakeStatus.CLOSED
        self.seed = seed

    @event(DeadlinesChecked)
    def _deadlines_checked(self, at: datetime, actor: str) -> None:
        self.last_checked = at


CATALOG_ID: UUID = uuid5(NAMESPACE, "intake-catalog")


class IntakeCatalog(Aggregate):
    """The list of every intake ever defined, so listing them needs no scan of the log."""

    ID = CATALOG_ID

    class Started(Aggregate.Created):
        pass

    class IntakeAdded(Aggregate.Event):
        intake_id: UUID

    @staticmethod
    def create_id() -> UUID:
        return CATALOG_ID

    @event(Started)
    def __init__(self) -> None:
        self.intake_ids: list[UUID] = []

    @event(IntakeAdded)
    def add(self, intake_id: UUID) -> None:
        self.intake_ids.append(intake_id)
