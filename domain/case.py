"""The Case aggregate: one person's file in one intake, from the first saved step onwards."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import CaseClosed, IdempotencyKeyReused, IdentityLocked, IncompleteRegistration
from domain.identity import reference_index_id
from domain.values import IDENTITY_FIELDS, STEPS, CaseStatus, Step


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
        self.language = language
        self.registration_key = idempotency_key
        self.status = CaseStatus.DRAFT
        self.submitted_at: datetime | None = None
        self.withdrawn_at: datetime | None = None
        # idempotency key -> (command, version of the event it produced)
        self.outcomes: dict[str, tuple[str, int]] = {idempotency_key: ("register", 1)}

    # Queries

    def outcome_of(self, idempotency_key: str, command: str) -> int | None:
        """The version a request with this key produced, or None if no such request was seen."""
        seen = self.outcomes.get(idempotency_key)
        if seen is None:
            return None
        if seen[0] != command:
            raise IdempotencyKeyReused(f"key already used for {seen[0]}, not {command}")
        return seen[1]

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
        self.trigger_event(
            self.Withdrawn,
            intake_id=self.intake_id,
            reason=reason,
            idempotency_key=idempotency_key,
            actor=actor,
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
        self.language = language
        self.outcomes[idempotency_key] = ("save_step", self.version + 1)


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
