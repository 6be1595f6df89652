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
    DEFAULT_TIME_ZONE,
    ChecklistItem,
    DrawMode,
    IntakeStatus,
    Policy,
    UnusedReserved,
    default_pool_label,
)


class Intake(Aggregate):
    """One round of a program: a fixed number of places, a window, and how places are allocated."""

    seed = ""  # a legacy lottery's, revealed at the close (a class default: older snapshots)
    time_zone = DEFAULT_TIME_ZONE  # likewise: snapshots taken before intakes named a zone

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
        # Version 3: how a person qualifies for a reserved pool (the question they answer when
        # registering, per language) and what happens to reserved places nobody took.
        pool_labels: dict[str, dict[str, str]]
        unused_reserved: str
        # Version 4: the zone (IANA name) the intake's times are shown in to people.
        time_zone: str

        class_version = 4

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Intakes defined before stage two existed ask for the pilot's defaults."""
            state["checklist"] = [item.as_dict() for item in DEFAULT_CHECKLIST]
            state["sections"] = list(DEFAULT_SECTIONS)
            state["case_document_bytes"] = DEFAULT_CASE_DOCUMENT_BYTES

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            """Intakes defined before pools were reachable: labels from the names, and reserved
            places stay reserved (what the allocator did then)."""
            state["pool_labels"] = {name: default_pool_label(name) for name in state["pools"]}
            state["unused_reserved"] = UnusedReserved.KEPT.value

        @staticmethod
        def upcast_v3_v4(state: dict[str, Any]) -> None:
            """Intakes defined before they named a zone show their times in the default one."""
            state["time_zone"] = DEFAULT_TIME_ZONE

    class Opened(Aggregate.Event):
        actor: str
        seed_commitment: str  # lottery: SHA-256 of the secret's hex text; empty for first come
        # Version 2, lottery: where the draw's randomness comes from, fixed before any entry.
        # {"mode": "beacon", "chain": {...}, "round": N, "round_time": ISO} | {"mode": "operator"}
        # | {"mode": "legacy"} (the seed itself committed, revealed at the close) | {} (first come)
        draw: dict[str, Any]

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["draw"] = {"mode": DrawMode.LEGACY.value} if state["seed_commitment"] else {}

    class Closed(Aggregate.Event):
        actor: str
        seed: str  # legacy lottery: the seed revealed for the draw; otherwise empty

        def apply(self, aggregate: Any) -> None:
            """Keep when the close happened: a beacon draw uses no round published before it."""
            super().apply(aggregate)
            aggregate.closed_at = self.timestamp

    class DrawInputsRecorded(Aggregate.Event):
        """A lottery's randomness, obtained after the close fixed the entries: the secret
        committed at opening, revealed, and the beacon round's signed value (or, with no
        beacon, a value the operator supplied)."""

        secret: str
        source: str  # "beacon" or "operator"
        round: int  # the beacon round (0: operator)
        signature: str  # the beacon's BLS signature of the round, hex ("" : operator)
        randomness: str  # SHA-256 of the signature, or the operator's value, hex
        actor: str

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
        pool_labels: dict[str, dict[str, str]],
        unused_reserved: str,
        time_zone: str,
    ) -> None:
        self.code = code
        self.time_zone = time_zone
        self.pool_labels = {name: dict(label) for name, label in pool_labels.items()}
        self.unused_reserved = UnusedReserved(unused_reserved)
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
        self.draw: dict[str, Any] = {}
        self.draw_inputs: dict[str, Any] = {}
        self.closed_at: datetime | None = None
        self.last_checked: datetime | None = None

    def open(self, actor: str, seed_commitment: str, draw: dict[str, Any]) -> None:
        if self.status is not IntakeStatus.DEFINED:
            raise IntakeStateError(f"intake {self.code} is {self.status}, only a defined one opens")
        self._opened(actor=actor, seed_commitment=seed_commitment, draw=draw)

    def record_draw_inputs(
        self, *, secret: str, source: str, round: int, signature: str, randomness: str, actor: str
    ) -> None:
        if self.status is not IntakeStatus.CLOSED:
            raise IntakeStateError(
                f"intake {self.code} is {self.status}: the draw comes after the close"
            )
        if self.draw.get("mode") not in {DrawMode.BEACON.value, DrawMode.OPERATOR.value}:
            raise IntakeStateError(f"intake {self.code} has no draw to make")
        if self.draw_inputs:
            raise IntakeStateError(f"the draw of intake {self.code} has been made")
        self._draw_inputs_recorded(
            secret=secret,
            source=source,
            round=round,
            signature=signature,
            randomness=randomness,
            actor=actor,
        )

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
    def _opened(self, actor: str, seed_commitment: str, draw: dict[str, Any]) -> None:
        self.status = IntakeStatus.OPEN
        self.seed_commitment = seed_commitment
        self.draw = dict(draw)

    @event(DrawInputsRecorded)
    def _draw_inputs_recorded(
        self, secret: str, source: str, round: int, signature: str, randomness: str, actor: str
    ) -> None:
        self.draw_inputs = {
            "secret": secret,
            "source": source,
            "round": round,
            "signature": signature,
            "randomness": randomness,
        }

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
