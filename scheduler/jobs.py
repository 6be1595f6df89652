"""The scheduler's jobs: plain functions of their collaborators and `now`, each safe to repeat.

Running a job twice, or from two schedulers at once, has the effect of running it once: every
job re-reads the state it acts on and the domain refuses a second open, close or check.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from eventsourcing.persistence import IntegrityError

from domain.beacon import BeaconError, HttpBeacon, round_time
from domain.documents import Documents
from domain.errors import (
    CaseActionRefused,
    DocumentNotFound,
    IntakeStateError,
    InvalidValue,
    ScannerUnavailable,
)
from domain.registry import Registry
from domain.storage import BlobStore, Collected
from domain.values import GENERAL_POOL, SYSTEM, IntakeStatus, IntakeView, Policy
from projections.allocation import AllocationQueries
from projections.documents import DocumentQueries

log = logging.getLogger(__name__)
ACTOR = f"{SYSTEM}:scheduler"


def _done_once(action: str, code: str, command: Callable[[], None]) -> bool:
    """Run the command; a refusal because it was already done (elsewhere) is not an error."""
    try:
        command()
    except (IntakeStateError, IntegrityError) as already:
        log.info("%s %s: already done (%s)", action, code, already)
        return False
    log.info("%s %s", action, code)
    return True


def _open(registry: Registry, intake: IntakeView) -> bool:
    try:
        return _done_once(
            "opened", intake.code, lambda: registry.open_intake(intake.code, actor=ACTOR)
        )
    except InvalidValue as refused:  # e.g. a beacon lottery without a closing time
        log.error("cannot open %s: %s: %s", intake.code, refused.field, refused.message)
        return False


def _close(registry: Registry, intake: IntakeView) -> bool:
    return _done_once(
        "closed", intake.code, lambda: registry.close_intake(intake.code, actor=ACTOR)
    )


def open_due_intakes(registry: Registry, now: datetime) -> list[str]:
    """Open every defined intake whose window has started (and not yet ended)."""
    due = [
        intake
        for intake in registry.list_intakes()
        if intake.status is IntakeStatus.DEFINED
        and intake.opens_at is not None
        and intake.opens_at <= now
        and (intake.closes_at is None or now < intake.closes_at)
    ]
    return [intake.code for intake in due if _open(registry, intake)]


def close_due_intakes(registry: Registry, now: datetime) -> list[str]:
    """Close every open intake whose window has ended; a lottery's draw follows its close."""
    due = [
        intake
        for intake in registry.list_intakes()
        if intake.status is IntakeStatus.OPEN
        and intake.closes_at is not None
        and intake.closes_at <= now
    ]
    return [intake.code for intake in due if _close(registry, intake)]


def draw_due_lotteries(registry: Registry, beacon: HttpBeacon, now: datetime) -> list[str]:
    """Draw every closed beacon lottery whose round is out: fetch the round, verified, and
    record it (a round not published yet, or a beacon out of reach, is tried again next time)."""
    drawn = []
    for intake in registry.list_intakes():
        if intake.status is not IntakeStatus.CLOSED or intake.policy is not Policy.LOTTERY:
            continue
        pending = registry.pending_draw(intake.code)
        if pending is None:
            continue
        chain, number = pending
        if round_time(chain, number) > now:
            continue
        try:
            found = beacon.fetch(chain, number)
        except BeaconError as unreachable:
            log.warning("draw of %s waits: %s", intake.code, unreachable)
            continue
        if found is None:
            log.info("draw of %s waits: round %d is not published yet", intake.code, number)
            continue
        if _done_once(
            "drew",
            intake.code,
            lambda code=intake.code, found=found: registry.draw(  # type: ignore[misc]
                code, actor=ACTOR, beacon_round=found
            ),
        ):
            drawn.append(intake.code)
    return drawn


def close_full_intakes(
    registry: Registry, allocations: AllocationQueries, now: datetime
) -> list[str]:
    """Close a first-come intake once every place is given and its waitlist is full."""
    quotas = {quota.intake_id: quota for quota in allocations.quotas()}
    full = [
        intake
        for intake in registry.list_intakes()
        if intake.status is IntakeStatus.OPEN
        and intake.policy is Policy.FIRST_COME
        and intake.waitlist_length > 0
        and intake.id in quotas
        and quotas[intake.id].granted >= quotas[intake.id].capacity
        and allocations.waitlisted(intake.id, GENERAL_POOL) >= intake.waitlist_length
    ]
    return [intake.code for intake in full if _close(registry, intake)]


def expire_overdue_offers(
    registry: Registry, allocations: AllocationQueries, now: datetime
) -> list[str]:
    """Record that time reached `now` in each intake holding an offer past its deadline.

    The allocator then expires those offers and invites the next people waiting. The time is
    recorded in the log, so a replay of the log expires exactly the same offers.
    """
    codes = [
        registry.get_intake_by_id(intake_id).code
        for intake_id in allocations.intakes_with_overdue_offers(now)
    ]
    return [
        code
        for code in codes
        if _done_once(
            "checked deadlines of",
            code,
            lambda code=code: registry.check_deadlines(code, now, actor=ACTOR),  # type: ignore[misc]
        )
    ]


DEFAULT_GRACE = timedelta(hours=24)


# A resumable upload nobody has added to for this long is given up (the person starts again).
ABANDONED_UPLOAD = timedelta(days=7)


def collect_documents(
    store: BlobStore,
    documents_queries: DocumentQueries,
    lag_barrier: Callable[[], None],
    now: datetime,
    *,
    grace: timedelta = DEFAULT_GRACE,
) -> Collected:
    """Delete blobs no event references that were last written more than `grace` before `now`
    (uploads that failed or were abandoned before their event was recorded).

    The store asks `lag_barrier` under its exclusive lock; the barrier raises unless the
    references read model has caught up with the log, and then nothing is deleted.
    """
    # Once before the store's exclusive lock, which holds up every upload's commit: the wait
    # under it, for the few events since, is then short.
    lag_barrier()
    done = store.collect(now - grace, documents_queries.referenced, lag_barrier)
    abandoned = store.expire_staging(now - ABANDONED_UPLOAD)
    log.info(
        "collected documents: %d examined, %d kept, %d deleted (%d bytes); "
        "%d files of abandoned resumable uploads removed",
        done.examined,
        done.kept,
        done.deleted,
        done.bytes_freed,
        abandoned,
    )
    return done


def rescan_pending_documents(
    documents: Documents, queries: DocumentQueries, now: datetime
) -> dict[str, int]:
    """Ask the virus scanner again about each document waiting for a verdict.

    Stops at the first ScannerUnavailable: the scanner is still down, and every document stays
    pending (it never counts as present without a clean verdict). A document that changed since
    the read model listed it (removed, or scanned by another run) is skipped.
    """
    tally = {"clean": 0, "infected": 0, "skipped": 0}
    for case_id, document_id in queries.pending_scans():
        try:
            state = documents.rescan(case_id, document_id)
        except ScannerUnavailable as down:
            log.info("rescan: scanner still unavailable (%s)", down)
            break
        except (CaseActionRefused, DocumentNotFound) as moved_on:
            log.info("rescan %s %s: skipped (%s)", case_id, document_id, moved_on)
            tally["skipped"] += 1
            continue
        tally[state.value] = tally.get(state.value, 0) + 1
        log.info("rescanned %s %s: %s", case_id, document_id, state.value)
    return tally


JOBS = (open_due_intakes, close_due_intakes, close_full_intakes, expire_overdue_offers)
