"""The Registry: the eventsourcing Application that records intakes and cases.

Commands return ids, receipts or outcomes; queries return frozen dataclasses. Aggregates never
leave this module's callers' hands: every read goes through a view type from domain.values.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import available_timezones

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import EnvType

from domain.beacon import (
    KNOWN_CHAINS,
    BeaconError,
    Chain,
    Round,
    first_round_at_or_after,
    round_time,
    verify,
)
from domain.case import Case, CaseReference
from domain.draw_secrets import DrawSecrets, FolderDrawSecrets, MemoryDrawSecrets
from domain.errors import (
    CaseNotFound,
    DuplicateRegistration,
    IntakeAlreadyDefined,
    IntakeNotFound,
    IntakeNotOpen,
    IntakeStateError,
    InvalidValue,
    SignInFailed,
    StaleVersion,
)
from domain.group_commit import GroupCommitter
from domain.identity import (
    ACCESS_CODE_HASH_KEY,
    ACCESS_CODE_KEY,
    CASE_ID_KEY,
    access_code_for,
    access_code_matches,
    case_id_for,
    derive_key,
    hash_access_code,
    new_reference,
    parse_reference,
    reference_index_id,
)
from domain.intake import CATALOG_ID, Intake, IntakeCatalog
from domain.policies import commitment, draw_round, lottery_seed
from domain.values import (
    APPLICANT,
    DEFAULT_CASE_DOCUMENT_BYTES,
    DEFAULT_CHECKLIST,
    DEFAULT_SECTIONS,
    DEFAULT_TIME_ZONE,
    DOCUMENT_TYPES,
    GENERAL_POOL,
    LANGUAGES,
    MB,
    CaseView,
    ChecklistItem,
    DrawMode,
    Identity,
    IntakeStatus,
    IntakeView,
    Outcome,
    Policy,
    Registration,
    Section,
    Step,
    UnusedReserved,
    default_pool_label,
)

CODE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")
POOL_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_REFERENCE_ATTEMPTS = 8  # a clash of 40 random bits is rare; eight in a row means a bug
_CONFLICT_ATTEMPTS = 3
_INTAKE_CACHE_SECONDS = 1.0
_DRAW_DELAY_SECONDS = 300  # a beacon round at least this long after the close
NO_BEACON = "none"
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Registry(Application[UUID]):
    """Records intakes and applicants' cases; the one way in for every applicant command."""

    name = "Registry"

    def __init__(
        self,
        env: EnvType | None = None,
        *,
        secret: bytes,
        clock: Callable[[], datetime] = _utcnow,
        draw_secrets: DrawSecrets | None = None,
    ) -> None:
        super().__init__(env)
        if len(secret) < 16:
            raise ValueError("the registry secret must be at least 16 bytes")
        self._identity_key = derive_key(secret, CASE_ID_KEY)
        self._code_key = derive_key(secret, ACCESS_CODE_KEY)
        self._code_hash_key = derive_key(secret, ACCESS_CODE_HASH_KEY)
        self._seed_key = derive_key(secret, "lottery-seed")
        self._clock = clock
        # A lottery's secret lives outside the database until the draw (domain.draw_secrets).
        folder = self.env.get("DRAW_SECRETS_DIR", "")
        self.draw_secrets: DrawSecrets = draw_secrets or (
            FolderDrawSecrets(Path(folder)) if folder else MemoryDrawSecrets()
        )
        self._draw_beacon = self.env.get("DRAW_BEACON", "drand-quicknet")
        self._draw_delay = int(self.env.get("DRAW_DELAY_SECONDS", str(_DRAW_DELAY_SECONDS)))
        # Intakes change a handful of times in their life (defined, opened, closed) but every
        # applicant request reads one: requests read them through this short-lived cache. A close
        # recorded by another process is seen here at most this late; a submission it lets
        # through is still recorded, and the allocator, which follows the log in commit order,
        # answers it with an explicit "not selected: submitted after the intake closed".
        self._intake_ttl = float(self.env.get("INTAKE_CACHE_SECONDS", str(_INTAKE_CACHE_SECONDS)))
        self._intakes: dict[UUID, tuple[float, Intake]] = {}  # one dict operation at a time
        self._committer: GroupCommitter | None = None
        if _flag(self.env.get("GROUP_COMMIT", "y")):
            self._committer = GroupCommitter(
                self.save,
                max_batch=int(self.env.get("GROUP_COMMIT_MAX_BATCH", "100")),
                max_wait=float(self.env.get("GROUP_COMMIT_MAX_WAIT_MS", "2")) / 1000,
                name=f"{self.name}-group-commit",
            )

    @property
    def group_commit(self) -> GroupCommitter | None:
        """The group committer, or None when every save is its own transaction."""
        return self._committer

    def close(self) -> None:
        if self._committer is not None:
            self._committer.close()
        super().close()

    # Intakes

    def define_intake(
        self,
        *,
        code: str,
        name: str,
        stream: str,
        capacity: int,
        policy: Policy | str,
        opens_at: datetime | None = None,
        closes_at: datetime | None = None,
        document_deadline_days: int = 28,
        waitlist_length: int = 0,
        pools: Mapping[str, int] | None = None,
        checklist: Sequence[ChecklistItem] = DEFAULT_CHECKLIST,
        sections: Sequence[str] = DEFAULT_SECTIONS,
        case_document_bytes: int = DEFAULT_CASE_DOCUMENT_BYTES,
        pool_labels: Mapping[str, Mapping[str, str]] | None = None,
        unused_reserved: UnusedReserved | str = UnusedReserved.TO_GENERAL,
        time_zone: str = DEFAULT_TIME_ZONE,
        actor: str,
    ) -> UUID:
        """Record a new intake. `waitlist_length` 0 means no limit; `pools` reserve places out
        of `capacity`, `pool_labels` say who qualifies ({pool: {"en": ..., "fr": ...}}, what the
        applicant declares), `unused_reserved` what becomes of places a pool leaves unused;
        `checklist` and `sections` are what invited applicants upload and complete; `time_zone`
        (an IANA name) is the zone its times are shown in."""
        check_time_zone(time_zone)
        pools = dict(pools or {})
        labels = _pool_labels(pools, pool_labels or {})
        if unused_reserved not in {u.value for u in UnusedReserved}:
            raise InvalidValue(
                "unused_reserved", f"must be one of {', '.join(u.value for u in UnusedReserved)}"
            )
        _check_stage_two(checklist, sections, case_document_bytes)
        if not CODE_PATTERN.match(code):
            raise InvalidValue("code", "use 2-40 lower-case letters, digits and hyphens")
        if not name.strip() or len(name) > 200:
            raise InvalidValue("name", "give a name of 1-200 characters")
        if capacity < 1:
            raise InvalidValue("capacity", "must be at least 1")
        if policy not in {p.value for p in Policy}:
            raise InvalidValue("policy", f"must be one of {', '.join(p.value for p in Policy)}")
        if opens_at and closes_at and closes_at <= opens_at:
            raise InvalidValue("closes_at", "must be after opens_at")
        if document_deadline_days < 1:
            raise InvalidValue("document_deadline_days", "must be at least 1")
        if waitlist_length < 0:
            raise InvalidValue("waitlist_length", "must not be negative")
        for pool, size in pools.items():
            if not POOL_PATTERN.match(pool) or pool == GENERAL_POOL:
                raise InvalidValue("pools", f"{pool!r}: use lower-case letters, digits, _")
            if size < 1:
                raise InvalidValue("pools", f"{pool!r} must have at least one place")
        if sum(pools.values()) >= capacity:
            raise InvalidValue("pools", "reserved pools must leave places for the general pool")
        intake = Intake(
            code=code,
            name=name.strip(),
            stream=stream.strip(),
            capacity=capacity,
            policy=Policy(policy).value,
            opens_at=opens_at,
            closes_at=closes_at,
            document_deadline_days=document_deadline_days,
            waitlist_length=waitlist_length,
            pools=pools,
            actor=actor,
            checklist=[item.as_dict() for item in checklist],
            sections=list(sections),
            case_document_bytes=case_document_bytes,
            pool_labels=labels,
            unused_reserved=UnusedReserved(unused_reserved).value,
            time_zone=time_zone,
        )
        for _ in range(_CONFLICT_ATTEMPTS):
            catalog = self._catalog()
            catalog.add(intake.id)
            try:
                self._save(intake, catalog)
            except IntegrityError:
                if intake.id in self.repository:
                    raise IntakeAlreadyDefined(f"an intake with code {code} exists") from None
                continue  # the catalog moved under us: read it again
            return intake.id
        raise IntakeAlreadyDefined(f"could not record intake {code}; try again")

    def open_intake(self, code: str, *, actor: str, beacon: str | None = None) -> None:
        """Open for registrations. A lottery draws a random secret, keeps it outside the
        database and records its SHA-256, and fixes where its randomness will come from:
        `beacon` (default: the DRAW_BEACON setting) names a known beacon chain, whose first
        round at least DRAW_DELAY_SECONDS after the closing time is fixed now, or is "none":
        a value the operator supplies after the close."""
        intake = self._intake(code, fresh=True)
        if intake.policy is not Policy.LOTTERY or intake.status is not IntakeStatus.DEFINED:
            intake.open(actor, seed_commitment="", draw={})  # refuses all but a defined intake
            self._save(intake)
            return
        draw = self._draw_plan(intake, self._draw_beacon if beacon is None else beacon)
        secret = self.draw_secrets.get(intake.id) or secrets.token_hex(32)
        self.draw_secrets.put(intake.id, secret)  # before the commitment is in the log
        intake.open(actor, seed_commitment=commitment(secret), draw=draw)
        self._save(intake)

    def _draw_plan(self, intake: Intake, beacon: str) -> dict[str, Any]:
        if beacon == NO_BEACON:
            return {"mode": DrawMode.OPERATOR.value}
        chain = KNOWN_CHAINS.get(beacon)
        if chain is None:
            known = ", ".join([*KNOWN_CHAINS, NO_BEACON])
            raise InvalidValue("beacon", f"no beacon is called {beacon!r}; known: {known}")
        if intake.closes_at is None:
            raise InvalidValue(
                "closes_at",
                "a draw from a beacon needs a closing time, to fix the beacon round now; set"
                " one, or open with no beacon (the operator then supplies the draw's value)",
            )
        number = first_round_at_or_after(
            chain, intake.closes_at + timedelta(seconds=self._draw_delay)
        )
        return {
            "mode": DrawMode.BEACON.value,
            "chain": chain.as_dict(),
            "round": number,
            "round_time": round_time(chain, number).isoformat(),
            "delay_seconds": self._draw_delay,
        }

    def close_intake(self, code: str, *, actor: str) -> None:
        """Close registrations. A legacy lottery reveals its seed, which the allocator draws
        with; any other lottery's entries are now fixed and its draw waits for its inputs."""
        intake = self._intake(code, fresh=True)
        legacy = intake.draw.get("mode") == DrawMode.LEGACY.value
        intake.close(actor, seed=self._lottery_seed(intake) if legacy else "")
        self._save(intake)

    def pending_draw(self, code: str) -> tuple[Chain, int] | None:
        """The beacon chain and round a closed lottery is waiting for; None if it waits for
        nothing from a beacon (first come, no beacon, not closed yet, or drawn)."""
        intake = self._intake(code, fresh=True)
        if intake.status is not IntakeStatus.CLOSED or intake.draw_inputs:
            return None
        if intake.draw.get("mode") != DrawMode.BEACON.value or intake.closed_at is None:
            return None
        chain = Chain.from_dict(intake.draw["chain"])
        number = draw_round(
            int(intake.draw["round"]),
            chain.genesis_time,
            chain.period,
            intake.closed_at.timestamp(),
            int(intake.draw.get("delay_seconds", 0)),
        )
        return chain, number

    def draw(
        self,
        code: str,
        *,
        actor: str,
        beacon_round: Round | None = None,
        operator_value: str | None = None,
    ) -> None:
        """Record a closed lottery's draw inputs: its secret, revealed, and the beacon round's
        signed value (verified here) or, with no beacon, the operator's value (64 hex digits).
        The allocator then draws; every input is in the log for anyone to check."""
        intake = self._intake(code, fresh=True)
        mode = intake.draw.get("mode")
        if intake.policy is not Policy.LOTTERY or mode not in {
            DrawMode.BEACON.value,
            DrawMode.OPERATOR.value,
        }:
            raise IntakeStateError(f"intake {code} has no draw to make")
        if intake.status is not IntakeStatus.CLOSED:
            raise IntakeStateError(
                f"intake {code} is {intake.status}: the draw comes after the close"
            )
        if intake.draw_inputs:
            raise IntakeStateError(f"the draw of intake {code} has been made")
        secret = self.draw_secrets.get(intake.id)
        if secret is None or commitment(secret) != intake.seed_commitment:
            raise IntakeStateError(
                f"the draw secret of intake {code} is missing or does not match its commitment"
            )
        if mode == DrawMode.BEACON.value:
            if beacon_round is None or operator_value is not None:
                raise InvalidValue("beacon", f"intake {code} draws from a beacon round")
            pending = self.pending_draw(code)
            assert pending is not None  # closed, beacon, not drawn: checked above
            chain, number = pending
            if beacon_round.round != number:
                raise InvalidValue("round", f"intake {code} draws with round {number}")
            try:
                randomness = verify(chain, number, beacon_round.signature)
            except BeaconError as error:
                raise InvalidValue("signature", str(error)) from None
            source, number, signature = "beacon", number, beacon_round.signature
        else:
            value = (operator_value or "").strip().lower()
            if beacon_round is not None or not HEX64.match(value):
                raise InvalidValue(
                    "operator_value", "intake draws from an operator's value: 64 hex digits"
                )
            randomness = value
            source, number, signature = "operator", 0, ""
        intake.record_draw_inputs(
            secret=secret,
            source=source,
            round=number,
            signature=signature,
            randomness=randomness,
            actor=actor,
        )
        self._save(intake)

    def check_deadlines(self, code: str, now: datetime, *, actor: str) -> None:
        """Record that time has reached `now`: offers with an earlier deadline expire."""
        intake = self._intake(code, fresh=True)
        intake.check_deadlines(now, actor)
        self._save(intake)

    def _lottery_seed(self, intake: Intake) -> str:
        return lottery_seed(self._seed_key, intake.id) if intake.policy is Policy.LOTTERY else ""

    def get_intake(self, code: str) -> IntakeView:
        return _intake_view(self._intake(code))

    def get_intake_by_id(self, intake_id: UUID) -> IntakeView:
        return _intake_view(self._read_intake(intake_id, f"no intake {intake_id}"))

    def list_intakes(self) -> list[IntakeView]:
        catalog = self._catalog()
        return [_intake_view(self._cached_intake(i)) for i in catalog.intake_ids]

    # Cases

    def register(
        self,
        intake_code: str,
        answers: Mapping[str, Any],
        *,
        language: str,
        idempotency_key: str,
        pool: str = GENERAL_POOL,
    ) -> Registration:
        """Start a case with the about-you step; refuse the same person twice in one intake."""
        _check_language(language)
        intake = self._intake(intake_code)
        if pool != GENERAL_POOL and pool not in intake.pools:
            raise InvalidValue("pool", f"intake {intake_code} has no pool {pool}")
        if not intake.accepts_registrations(self._clock()):
            raise IntakeNotOpen(f"intake {intake_code} is not open for registrations")
        identity = _identity(answers)
        case_id = case_id_for(self._identity_key, intake.id, identity)
        access_code = access_code_for(self._code_key, case_id, idempotency_key)
        code_hash = hash_access_code(self._code_hash_key, case_id, access_code)
        for _ in range(_REFERENCE_ATTEMPTS):
            reference = new_reference()
            case = Case(  # type: ignore[call-arg]  # the library's metaclass accepts id=
                id=case_id,
                intake_id=intake.id,
                reference=reference,
                access_code_hash=code_hash,
                answers=dict(answers),
                language=language,
                idempotency_key=idempotency_key,
                actor=APPLICANT,
                pool=pool,
            )
            pointer = CaseReference(reference=reference, case_id=case_id)
            try:
                self._save(case, pointer)
            except IntegrityError:
                if case_id not in self.repository:
                    continue  # another case holds this reference: draw another
                existing: Case = self.repository.get(case_id)
                if existing.registration_key != idempotency_key:
                    raise DuplicateRegistration(
                        "this person is already registered in this intake"
                    ) from None
                reference, replayed = existing.reference, True
            else:
                replayed = False
            return Registration(case_id, reference, access_code, 1, replayed)
        raise RuntimeError("could not draw an unused reference")

    def save_step(
        self,
        case_id: UUID,
        step: Step | str,
        answers: Mapping[str, Any],
        *,
        expected_version: int,
        language: str,
        idempotency_key: str,
    ) -> Outcome:
        _check_language(language)
        try:
            the_step = Step(step)
        except ValueError:
            raise InvalidValue("step", f"no step is called {step}") from None
        return self.decide(
            case_id,
            "save_step",
            expected_version,
            idempotency_key,
            lambda case: case.save_step(
                the_step, dict(answers), language, idempotency_key, APPLICANT
            ),
        )

    def save_draft(
        self,
        case_id: UUID,
        step: Step | str,
        values: Mapping[str, str],
        *,
        expected_version: int,
        language: str,
        idempotency_key: str,
    ) -> Outcome:
        """Keep a step as typed, not yet valid ("Save and come back later"); it does not count
        as done, and saving the step for real replaces it."""
        _check_language(language)
        try:
            the_step = Step(step)
        except ValueError:
            raise InvalidValue("step", f"no step is called {step}") from None
        return self.decide(
            case_id,
            "save_draft",
            expected_version,
            idempotency_key,
            lambda case: case.save_draft(
                the_step, dict(values), language, idempotency_key, APPLICANT
            ),
        )

    def submit(
        self, case_id: UUID, *, expected_version: int, language: str, idempotency_key: str
    ) -> Outcome:
        _check_language(language)
        case = self._case(case_id)
        intake = self._cached_intake(case.intake_id)
        if case.outcome_of(idempotency_key, "submit") is None and not intake.accepts_registrations(
            self._clock()
        ):
            raise IntakeNotOpen("the intake closed before this registration was submitted")
        return self.decide(
            case_id,
            "submit",
            expected_version,
            idempotency_key,
            lambda case: case.submit(language, idempotency_key, APPLICANT),
            first_read=case,
        )

    def withdraw(
        self, case_id: UUID, *, expected_version: int, reason: str, idempotency_key: str
    ) -> Outcome:
        return self.decide(
            case_id,
            "withdraw",
            expected_version,
            idempotency_key,
            lambda case: case.withdraw(reason, idempotency_key, APPLICANT),
        )

    def provide_information(
        self,
        case_id: UUID,
        request_id: str,
        answer: str,
        *,
        expected_version: int,
        idempotency_key: str,
    ) -> Outcome:
        """The applicant's answer to an officer's request for information."""
        if not answer.strip() or len(answer) > 5000:
            raise InvalidValue("answer", "give an answer of 1-5000 characters")
        return self.decide(
            case_id,
            "provide_information",
            expected_version,
            idempotency_key,
            lambda case: case.provide_information(
                request_id, answer.strip(), idempotency_key, APPLICANT
            ),
        )

    def sign_in(self, reference: str, access_code: str) -> UUID:
        """The case that this reference and access code open; the same error for any mismatch."""
        canonical = parse_reference(reference)
        if canonical is None:
            raise SignInFailed("reference or access code not recognised")
        try:
            pointer: CaseReference = self.repository.get(reference_index_id(canonical))
            case: Case = self.repository.get(pointer.case_id)
        except AggregateNotFoundError:
            raise SignInFailed("reference or access code not recognised") from None
        if not access_code_matches(
            self._code_hash_key, case.id, access_code, case.access_code_hash
        ):
            raise SignInFailed("reference or access code not recognised")
        return case.id

    def get_case(self, case_id: UUID, version: int | None = None) -> CaseView:
        case = self._case(case_id, version)
        intake = self._cached_intake(case.intake_id)
        return CaseView(
            id=case.id,
            intake=_intake_view(intake),
            reference=case.reference,
            status=case.status,
            language=case.language,
            version=case.version,
            answers={step: dict(values) for step, values in case.answers.items()},
            drafts={step: dict(values) for step, values in case.drafts.items()},
            registered_at=case.created_on,
            submitted_at=case.submitted_at,
            withdrawn_at=case.withdrawn_at,
            steps_done=tuple(case.answers),
            pool=case.pool,
            assigned_to=case.assigned_to,
            requests=tuple(case.requests),
            decided_at=case.decided_at,
            decision_reasons=tuple(case.decision_reasons),
            decision_note=case.decision_note,
            details={section: dict(values) for section, values in case.details.items()},
            documents=tuple(case.documents.values()),
            application_submitted_at=case.application_submitted_at,
            document_count=case.document_count,
        )

    def replayed(self, case_id: UUID, idempotency_key: str, command: str) -> Outcome | None:
        """The outcome of an earlier request with this key, or None if there was none: lets a
        service skip costly work (streaming an upload) for a request it has already recorded."""
        done = self._case(case_id).outcome_of(idempotency_key, command)
        return None if done is None else Outcome(case_id, command, done, replayed=True)

    def find_case(self, reference: str) -> UUID:
        """The case id of a reference (as typed: case and hyphens do not matter)."""
        canonical = parse_reference(reference)
        if canonical is None:
            raise CaseNotFound(f"{reference!r} is not a valid reference")
        try:
            pointer: CaseReference = self.repository.get(reference_index_id(canonical))
        except AggregateNotFoundError:
            raise CaseNotFound(f"no case has the reference {canonical}") from None
        return pointer.case_id

    # Internals

    def _save(self, *aggregates: Intake | IntakeCatalog | Case | CaseReference) -> int | None:
        """The one write path of the Registry: through the group committer when it is on.

        Returns the log position (notification id) of the last event written.
        """
        try:
            if self._committer is None:
                recordings = self.save(*aggregates)
            else:
                recordings = self._committer.save(
                    [event for a in aggregates for event in a.collect_events()]
                )
            return recordings[-1].notification.id if recordings else None
        finally:
            for changed in aggregates:
                if isinstance(changed, Intake):
                    self._intakes.pop(changed.id, None)

    def decide(
        self,
        case_id: UUID,
        command: str,
        expected_version: int | None,
        idempotency_key: str,
        change: Callable[[Case], None],
        first_read: Case | None = None,
    ) -> Outcome:
        """Run a command on a case once per idempotency key, refusing stale versions.

        The one way any service changes an existing case (the applicant's commands here, the
        officers' in domain.casework), so every change gets the same idempotency, conflict
        and stale-version handling.

        A concurrent writer makes the save conflict; the case is then read again, so a duplicate
        of this very request finds its outcome and any other change shows as a stale version.
        `first_read` is the case as the caller has just read it, to save reading it twice.
        `expected_version` None: the change applies to the case as it is now (documents, which
        add to a case rather than overwrite what another tab saved).
        """
        for _ in range(_CONFLICT_ATTEMPTS):
            case, first_read = first_read or self._case(case_id), None
            done = case.outcome_of(idempotency_key, command)
            if done is not None:
                return Outcome(case_id, command, done, replayed=True)
            if expected_version is not None and case.version != expected_version:
                raise StaleVersion(expected_version, case.version)
            change(case)
            try:
                position = self._save(case)
            except IntegrityError:
                continue
            return Outcome(case_id, command, case.version, replayed=False, position=position)
        current = self._case(case_id).version
        raise StaleVersion(current if expected_version is None else expected_version, current)

    def _case(self, case_id: UUID, version: int | None = None) -> Case:
        try:
            case: object = self.repository.get(case_id, version=version)
        except AggregateNotFoundError:
            raise CaseNotFound(f"no case {case_id}") from None
        if not isinstance(case, Case):
            raise CaseNotFound(f"no case {case_id}")
        return case

    def _intake(self, code: str, *, fresh: bool = False) -> Intake:
        """The intake with this code: read from the log when `fresh`, else from the cache.

        A cached intake is shared between requests: only read it. Commands take a fresh one.
        """
        intake_id, missing = Intake.create_id(code), f"no intake has the code {code}"
        if fresh:
            return self._read_intake(intake_id, missing)
        return self._cached_intake(intake_id, missing)

    def _cached_intake(self, intake_id: UUID, missing: str = "") -> Intake:
        now = time.monotonic()
        hit = self._intakes.get(intake_id)
        if hit is not None and now - hit[0] < self._intake_ttl:
            return hit[1]
        intake = self._read_intake(intake_id, missing or f"no intake {intake_id}")
        self._intakes[intake_id] = (now, intake)
        return intake

    def _read_intake(self, intake_id: UUID, missing: str) -> Intake:
        """The intake as the log has it now; IntakeNotFound (with `missing`) if there is none."""
        try:
            intake: object = self.repository.get(intake_id)
        except AggregateNotFoundError:
            raise IntakeNotFound(missing) from None
        if not isinstance(intake, Intake):
            raise IntakeNotFound(missing)
        return intake

    def _catalog(self) -> IntakeCatalog:
        try:
            catalog: object = self.repository.get(CATALOG_ID)
        except AggregateNotFoundError:
            return IntakeCatalog()
        assert isinstance(catalog, IntakeCatalog)
        return catalog


def _flag(value: str) -> bool:
    return value.strip().lower() in {"1", "y", "yes", "true", "on"}


def _check_language(language: str) -> None:
    if language not in LANGUAGES:
        raise InvalidValue("language", f"must be one of {', '.join(LANGUAGES)}")


def _identity(answers: Mapping[str, Any]) -> Identity:
    try:
        return Identity(
            passport_number=str(answers["passport_number"]),
            passport_country=str(answers["passport_country"]),
            date_of_birth=date.fromisoformat(str(answers["date_of_birth"])),
        )
    except KeyError as missing:
        raise InvalidValue(str(missing.args[0]), "is required to register") from None
    except ValueError:
        raise InvalidValue("date_of_birth", "must be a date as YYYY-MM-DD") from None


ITEM_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def _check_stage_two(
    checklist: Sequence[ChecklistItem], sections: Sequence[str], case_document_bytes: int
) -> None:
    keys = [item.key for item in checklist]
    if len(set(keys)) != len(keys):
        raise InvalidValue("checklist", "each checklist item needs its own key")
    for item in checklist:
        if not ITEM_PATTERN.match(item.key):
            raise InvalidValue("checklist", f"{item.key!r}: use lower-case letters, digits, _")
        if not item.name_en.strip() or not item.name_fr.strip():
            raise InvalidValue("checklist", f"{item.key}: give a name in English and French")
        unknown = set(item.types) - set(DOCUMENT_TYPES)
        if not item.types or unknown:
            raise InvalidValue(
                "checklist", f"{item.key}: types must be some of {', '.join(DOCUMENT_TYPES)}"
            )
        if not 1 <= item.max_bytes <= 100 * MB:
            raise InvalidValue("checklist", f"{item.key}: max_bytes must be 1 byte to 100 MB")
        if not 1 <= item.max_files <= 20:
            raise InvalidValue("checklist", f"{item.key}: max_files must be 1-20")
    known = {s.value for s in Section}
    if set(sections) - known or len(set(sections)) != len(sections):
        raise InvalidValue("sections", f"must be some of {', '.join(sorted(known))}")
    if case_document_bytes < 1:
        raise InvalidValue("case_document_bytes", "must be at least 1")


def check_time_zone(name: str) -> None:
    """An IANA zone the standard library knows (`America/Toronto`), not an abbreviation or offset."""
    if name not in available_timezones():
        raise InvalidValue(
            "time_zone",
            f"{name!r} is not a time zone; give an IANA name such as {DEFAULT_TIME_ZONE}",
        )


def _intake_view(intake: Intake) -> IntakeView:
    return IntakeView(
        id=intake.id,
        code=intake.code,
        name=intake.name,
        stream=intake.stream,
        capacity=intake.capacity,
        policy=intake.policy,
        opens_at=intake.opens_at,
        closes_at=intake.closes_at,
        document_deadline_days=intake.document_deadline_days,
        waitlist_length=intake.waitlist_length,
        pools=dict(intake.pools),
        status=intake.status,
        version=intake.version,
        checklist=intake.checklist,
        sections=intake.sections,
        case_document_bytes=intake.case_document_bytes,
        seed_commitment=intake.seed_commitment,
        seed=intake.seed,
        pool_labels={pool: dict(label) for pool, label in intake.pool_labels.items()},
        unused_reserved=intake.unused_reserved,
        draw=dict(intake.draw),
        draw_inputs=dict(intake.draw_inputs),
        closed_at=intake.closed_at,
        time_zone=intake.time_zone,
    )


def _pool_labels(
    pools: Mapping[str, int], given: Mapping[str, Mapping[str, str]]
) -> dict[str, dict[str, str]]:
    """Each reserved pool's question, in every language: given, or read from its name."""
    unknown = set(given) - set(pools)
    if unknown:
        raise InvalidValue("pool_labels", f"no pool is called {', '.join(sorted(unknown))}")
    labels = {}
    for pool in pools:
        label = {
            **default_pool_label(pool),
            **{k: str(v).strip() for k, v in given.get(pool, {}).items()},
        }
        if set(label) - set(LANGUAGES) or not all(
            0 < len(label[lang]) <= 200 for lang in LANGUAGES
        ):
            raise InvalidValue("pool_labels", f"{pool}: give 1-200 characters in en and fr")
        labels[pool] = {lang: label[lang] for lang in LANGUAGES}
    return labels
