"""Casework: the officers' commands on cases, each one Case event that names the officer.

A service beside the Registry rather than more methods on it: it owns the officers' rules (who
may act, which reasons exist, what an assignee must be) and writes through the Registry's one
way of changing a case (`Registry.decide`), so idempotency keys, stale versions and group
commit work exactly as they do for applicants.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

from domain.errors import (
    CarepathError,
    InvalidValue,
    NotPermitted,
    StaffNotFound,
    StaleVersion,
)
from domain.registry import Registry
from domain.staff import Staff
from domain.values import (
    REFUSAL_REASONS,
    RETURN_REASONS,
    BulkOutcome,
    Outcome,
    StaffRole,
    StaffView,
)

MAX_NOTE = 2000
MAX_BULK = 1000
# Bulk actions run this many cases at once, so the group committer writes them in shared
# transactions instead of one commit per case.
_BULK_THREADS = 16

HoldsPlace = Callable[[UUID], bool]


class Casework:
    """Assign, request information, accept for processing, return as incomplete, approve, refuse."""

    def __init__(self, registry: Registry, staff: Staff, holds_place: HoldsPlace) -> None:
        self._registry = registry
        self._staff = staff
        # Whether the allocator has given the case a place (and not released it). The allocator
        # is the authority on places; its read model answers this within its lag.
        self._holds_place = holds_place

    def assign(
        self,
        case_id: UUID,
        assignee_id: UUID | None,
        *,
        officer: StaffView,
        expected_version: int,
        idempotency_key: str,
    ) -> Outcome:
        """Assign the case to an officer (None: back to the unassigned queue)."""
        _require_officer(officer)
        if assignee_id is not None:
            self._require_assignee(assignee_id)
        return self._registry.decide(
            case_id,
            "assign",
            expected_version,
            idempotency_key,
            lambda case: case.assign(assignee_id, officer.id, idempotency_key),
        )

    def assign_many(
        self,
        cases: Sequence[tuple[UUID, int]],
        assignee_id: UUID | None,
        *,
        officer: StaffView,
        idempotency_key: str,
    ) -> BulkOutcome:
        """Assign each (case id, version it was seen at); a case changed since is skipped, named.

        Each case is its own decision (its own idempotency key, derived from the request's), so a
        retry of the whole request assigns nothing twice and reports the same cases.
        """
        _require_officer(officer)
        if not cases:
            raise InvalidValue("cases", "choose at least one case")
        if len(cases) > MAX_BULK:
            raise InvalidValue("cases", f"choose at most {MAX_BULK} cases at once")
        if assignee_id is not None:
            self._require_assignee(assignee_id)

        def one(item: tuple[UUID, int]) -> tuple[UUID, Outcome | str]:
            case_id, version = item
            case_key = f"{idempotency_key}:{case_id.hex}"
            try:
                return case_id, self._registry.decide(
                    case_id,
                    "assign",
                    version,
                    case_key,
                    lambda case: case.assign(assignee_id, officer.id, case_key),
                )
            except StaleVersion:
                return case_id, "changed since the queue was shown"
            except CarepathError as refused:  # refused for this case alone: named, not fatal
                return case_id, str(refused)

        unique = list(dict.fromkeys(cases))
        with ThreadPoolExecutor(max_workers=min(_BULK_THREADS, len(unique))) as pool:
            results = list(pool.map(one, unique))
        done = tuple(case_id for case_id, result in results if isinstance(result, Outcome))
        skipped = tuple((case_id, r) for case_id, r in results if isinstance(r, str))
        positions = [r.position for _, r in results if isinstance(r, Outcome) and r.position]
        return BulkOutcome(done=done, skipped=skipped, position=max(positions, default=None))

    def request_information(
        self,
        case_id: UUID,
        message: str,
        *,
        officer: StaffView,
        expected_version: int,
        idempotency_key: str,
    ) -> Outcome:
        _require_officer(officer)
        text = _text("message", message, required=True)
        return self._registry.decide(
            case_id,
            "request_information",
            expected_version,
            idempotency_key,
            lambda case: case.request_information(text, officer.id, idempotency_key),
        )

    def accept_for_processing(
        self, case_id: UUID, *, officer: StaffView, expected_version: int, idempotency_key: str
    ) -> Outcome:
        _require_officer(officer)
        return self._registry.decide(
            case_id,
            "accept",
            expected_version,
            idempotency_key,
            lambda case: case.accept_for_processing(
                officer.id, idempotency_key, holds_place=self._holds_place(case.id)
            ),
        )

    def return_incomplete(
        self,
        case_id: UUID,
        reasons: Sequence[str],
        note: str,
        *,
        officer: StaffView,
        expected_version: int,
        idempotency_key: str,
    ) -> Outcome:
        """Return as incomplete: the allocator releases the place to the next person waiting."""
        _require_officer(officer)
        chosen = _reasons(reasons, RETURN_REASONS, note)
        text = _text("note", note)
        return self._registry.decide(
            case_id,
            "return_incomplete",
            expected_version,
            idempotency_key,
            lambda case: case.return_incomplete(chosen, text, officer.id, idempotency_key),
        )

    def approve(
        self,
        case_id: UUID,
        note: str,
        *,
        officer: StaffView,
        expected_version: int,
        idempotency_key: str,
    ) -> Outcome:
        _require_officer(officer)
        text = _text("note", note)
        return self._registry.decide(
            case_id,
            "approve",
            expected_version,
            idempotency_key,
            lambda case: case.approve(text, officer.id, idempotency_key),
        )

    def refuse(
        self,
        case_id: UUID,
        reasons: Sequence[str],
        note: str,
        *,
        officer: StaffView,
        expected_version: int,
        idempotency_key: str,
    ) -> Outcome:
        _require_officer(officer)
        chosen = _reasons(reasons, REFUSAL_REASONS, note)
        text = _text("note", note)
        return self._registry.decide(
            case_id,
            "refuse",
            expected_version,
            idempotency_key,
            lambda case: case.refuse(chosen, text, officer.id, idempotency_key),
        )

    def _require_assignee(self, assignee_id: UUID) -> None:
        try:
            assignee = self._staff.get(assignee_id)
        except StaffNotFound:
            raise InvalidValue("assignee", "no such officer") from None
        if assignee.role is not StaffRole.OFFICER or assignee.disabled:
            raise InvalidValue("assignee", "cases are assigned only to active officers")


def _require_officer(staff: StaffView) -> None:
    if staff.role is not StaffRole.OFFICER or staff.disabled:
        raise NotPermitted(f"a {staff.role.value} cannot act on cases")


def _text(field: str, value: str, *, required: bool = False) -> str:
    text = value.strip()
    if required and not text:
        raise InvalidValue(field, "write a message")
    if len(text) > MAX_NOTE:
        raise InvalidValue(field, f"write at most {MAX_NOTE} characters")
    return text


def _reasons(reasons: Sequence[str], allowed: Sequence[str], note: str) -> list[str]:
    chosen = list(dict.fromkeys(reasons))
    if not chosen:
        raise InvalidValue("reasons", "choose at least one reason")
    unknown = [r for r in chosen if r not in allowed]
    if unknown:
        raise InvalidValue("reasons", f"unknown reason {unknown[0]!r}")
    if "other" in chosen and not note.strip():
        raise InvalidValue("note", "explain the other reason in the note")
    return chosen
