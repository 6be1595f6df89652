"""Read model of casework: each case's row for the officers' queue, counters, minutes, timeline.

Built only from the Registry's log (the Case events), so dropping the tables and replaying
rebuilds them exactly. No personal data goes in: references, ids, statuses, dates, step names,
reason codes and what officers wrote; never an applicant's answers. Documents are listed by
checklist item, digest, size and detected type, never their file names (a name can carry the
applicant's: officers read current names from the case itself); every digest any event names is kept for ever, for the blob collector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking
from eventsourcing.utils import get_topic
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from domain.case import Case
from domain.values import CaseStatus
from projections.views import (
    FollowingView,
    case_counts,
    case_documents,
    case_minutes,
    case_timeline,
    cases,
    document_digests,
    minute_of,
    select_in,
    upsert,
)

FOLLOWED = (
    Case.Registered,
    Case.StepSaved,
    Case.Submitted,
    Case.Withdrawn,
    Case.Assigned,
    Case.InformationRequested,
    Case.InformationProvided,
    Case.AcceptedForProcessing,
    Case.ReturnedIncomplete,
    Case.Approved,
    Case.Refused,
    Case.DetailsSaved,
    Case.DocumentAdded,
    Case.DocumentRemoved,
    Case.DocumentScanned,
    Case.ApplicationSubmitted,
)

METRICS = (
    "registered",
    "submitted",
    "withdrawn",
    "application_submitted",
    "accepted",
    "returned",
    "approved",
    "refused",
)
# A document's place in its case's history.
CURRENT, REPLACED, REMOVED = "current", "replaced", "removed"


class CaseworkTables(NamedTuple):
    """The casework view's tables: the live ones, or a rebuild's scratch copies."""

    cases: sa.Table
    case_counts: sa.Table
    case_minutes: sa.Table
    case_timeline: sa.Table
    case_documents: sa.Table
    document_digests: sa.Table


LIVE = CaseworkTables(
    cases, case_counts, case_minutes, case_timeline, case_documents, document_digests
)


def staff(officer_id: Any) -> str:
    return f"staff:{officer_id.hex}"


@dataclass
class _Batch:
    """A batch's changes gathered in memory, written in a few statements at its end."""

    rows: dict[str, dict[str, Any]]
    changed: set[str] = field(default_factory=set)
    counts: dict[tuple[str, str, str], int] = field(default_factory=dict)
    minutes: dict[tuple[str, datetime], list[int]] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    documents: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    changed_documents: set[tuple[str, str]] = field(default_factory=set)
    digests: dict[str, int] = field(default_factory=dict)  # digest -> first position naming it

    def row(self, e: Any) -> dict[str, Any]:
        found = self.rows.get(e.originator_id.hex)
        if found is None:
            raise LookupError(f"case {e.originator_id} was not registered in this view")
        found["version"] = e.originator_version
        found["updated_at"] = e.timestamp
        self.changed.add(e.originator_id.hex)
        return found

    def count(self, row: dict[str, Any], metric: str) -> None:
        key = (row["intake_id"], row["pool"], metric)
        self.counts[key] = self.counts.get(key, 0) + 1

    def per_minute(self, row: dict[str, Any], at: datetime, column: int) -> None:
        tally = self.minutes.setdefault((row["intake_id"], minute_of(at)), [0, 0])
        tally[column] += 1

    def document(self, e: Any, document_id: str | None) -> dict[str, Any] | None:
        """The case's document row, to change; None if it has none by that id (the aggregate
        ignores such a reference too, so the view does)."""
        if document_id is None:
            return None
        key = (e.originator_id.hex, document_id)
        found = self.documents.get(key)
        if found is not None:
            self.changed_documents.add(key)
        return found

    def add_document(self, row: dict[str, Any]) -> None:
        key = (row["case_id"], row["document_id"])
        self.documents[key] = row
        self.changed_documents.add(key)

    def referenced(self, digest: str, position: int) -> None:
        self.digests.setdefault(digest, position)

    def note(self, e: Any, position: int, what: str, actor: str, **details: Any) -> None:
        self.timeline.append(
            {
                "case_id": e.originator_id.hex,
                "position": position,
                "at": e.timestamp,
                "what": what,
                "actor": actor,
                "details": details,
            }
        )


class CaseworkView(FollowingView):
    """Applies the Registry's Case events to the casework tables, one batch per transaction."""

    name = "casework_view"
    topics = tuple(get_topic(cls) for cls in FOLLOWED)

    def __init__(self, engine: Engine, tables: CaseworkTables = LIVE) -> None:
        super().__init__(engine)
        self.tables = tables

    def apply_batch(self, connection: Connection, items: Sequence[tuple[Any, Tracking]]) -> None:
        t = self.tables
        ids = list(dict.fromkeys(e.originator_id.hex for e, _ in items))
        batch = _Batch(
            rows={row["case_id"]: row for row in select_in(connection, t.cases, "case_id", ids)},
            documents={
                (row["case_id"], row["document_id"]): row
                for row in select_in(connection, t.case_documents, "case_id", ids)
            },
        )
        for domain_event, tracking in items:
            self.apply(domain_event, tracking.notification_id, batch)
        upsert(connection, t.cases, [batch.rows[case_id] for case_id in sorted(batch.changed)])
        upsert(
            connection,
            t.case_documents,
            [batch.documents[key] for key in sorted(batch.changed_documents)],
        )
        _insert_new(
            connection,
            t.document_digests,
            [{"digest": d, "first_position": p} for d, p in sorted(batch.digests.items())],
        )
        upsert(
            connection,
            t.case_counts,
            [
                {"intake_id": i, "pool": p, "metric": m, "n": n}
                for (i, p, m), n in sorted(batch.counts.items())
            ],
            add=("n",),
        )
        upsert(
            connection,
            t.case_minutes,
            [
                {"intake_id": i, "minute": minute, "registered": r, "submitted": s}
                for (i, minute), (r, s) in sorted(batch.minutes.items())
            ],
            add=("registered", "submitted"),
        )
        if batch.timeline:
            connection.execute(t.case_timeline.insert(), batch.timeline)

    @singledispatchmethod
    def apply(self, domain_event: Any, position: int, batch: _Batch) -> None:
        """Events without a row change only move the position."""

    @apply.register
    def _(self, e: Case.Registered, position: int, batch: _Batch) -> None:
        case_id = e.originator_id.hex
        if case_id in batch.rows:
            raise LookupError(f"case {e.originator_id} was registered twice in this view")
        row = {
            "case_id": case_id,
            "reference": e.reference,
            "intake_id": e.intake_id.hex,
            "pool": e.pool,
            "status": CaseStatus.DRAFT.value,
            "assigned_to": None,
            "open_request": False,
            "registered_at": e.timestamp,
            "submitted_at": None,
            "decided_at": None,
            "updated_at": e.timestamp,
            "queued_at": e.timestamp,
            "version": e.originator_version,
        }
        batch.rows[case_id] = row
        batch.changed.add(case_id)
        batch.count(row, "registered")
        batch.per_minute(row, e.timestamp, 0)
        batch.note(e, position, "registered", e.actor, pool=e.pool)

    @apply.register
    def _(self, e: Case.StepSaved, position: int, batch: _Batch) -> None:
        batch.row(e)
        batch.note(e, position, "step_saved", e.actor, step=e.step)

    @apply.register
    def _(self, e: Case.Submitted, position: int, batch: _Batch) -> None:
        row = batch.row(e)
        row.update(
            status=CaseStatus.SUBMITTED.value, submitted_at=e.timestamp, queued_at=e.timestamp
        )
        batch.count(row, "submitted")
        batch.per_minute(row, e.timestamp, 1)
        batch.note(e, position, "submitted", e.actor)

    @apply.register
    def _(self, e: Case.Withdrawn, position: int, batch: _Batch) -> None:
        # The applicant's own words for withdrawing stay out: they may say anything about them.
        row = batch.row(e)
        row["status"] = CaseStatus.WITHDRAWN.value
        batch.count(row, "withdrawn")
        batch.note(e, position, "withdrawn", e.actor)

    @apply.register
    def _(self, e: Case.Assigned, position: int, batch: _Batch) -> None:
        assignee = e.assignee_id.hex if e.assignee_id is not None else None
        batch.row(e)["assigned_to"] = assignee
        batch.note(e, position, "assigned", staff(e.officer_id), assignee=assignee)

    @apply.register
    def _(self, e: Case.InformationRequested, position: int, batch: _Batch) -> None:
        batch.row(e)["open_request"] = True
        batch.note(
            e,
            position,
            "information_requested",
            staff(e.officer_id),
            request_id=e.request_id,
            message=e.message,
        )

    @apply.register
    def _(self, e: Case.InformationProvided, position: int, batch: _Batch) -> None:
        # The answer is the applicant's: only that the request was answered goes in.
        batch.row(e)["open_request"] = False
        batch.note(e, position, "information_provided", e.actor, request_id=e.request_id)

    @apply.register
    def _(self, e: Case.AcceptedForProcessing, position: int, batch: _Batch) -> None:
        row = batch.row(e)
        row["status"] = CaseStatus.ACCEPTED.value
        batch.count(row, "accepted")
        batch.note(e, position, "accepted", staff(e.officer_id))

    @apply.register
    def _(self, e: Case.ReturnedIncomplete, position: int, batch: _Batch) -> None:
        self._decided(e, position, batch, CaseStatus.RETURNED, "returned", reasons=list(e.reasons))

    @apply.register
    def _(self, e: Case.Approved, position: int, batch: _Batch) -> None:
        self._decided(e, position, batch, CaseStatus.APPROVED, "approved")

    @apply.register
    def _(self, e: Case.Refused, position: int, batch: _Batch) -> None:
        self._decided(e, position, batch, CaseStatus.REFUSED, "refused", reasons=list(e.reasons))

    # Stage two: the applicant's details (only which section was saved goes in), documents and
    # the application itself.

    @apply.register
    def _(self, e: Case.DetailsSaved, position: int, batch: _Batch) -> None:
        batch.row(e)
        batch.note(e, position, "details_saved", e.actor, section=e.section)

    @apply.register
    def _(self, e: Case.DocumentAdded, position: int, batch: _Batch) -> None:
        batch.row(e)
        replaced = batch.document(e, e.replaces)
        if replaced is not None:
            replaced.update(state=REPLACED, ended_at=e.timestamp)
        batch.add_document(
            {
                "case_id": e.originator_id.hex,
                "document_id": e.document_id,
                "item": e.item,
                "digest": e.digest,
                "size": e.size,
                "media_type": e.media_type,
                "scan": e.scan,
                "state": CURRENT,
                "replaces": e.replaces,
                "uploaded_at": e.timestamp,
                "ended_at": None,
                "position": position,
            }
        )
        batch.referenced(e.digest, position)
        batch.note(
            e,
            position,
            "document_added",
            e.actor,
            document_id=e.document_id,
            item=e.item,
            replaces=e.replaces,
            scan=e.scan,
        )

    @apply.register
    def _(self, e: Case.DocumentRemoved, position: int, batch: _Batch) -> None:
        batch.row(e)
        removed = batch.document(e, e.document_id)
        if removed is not None and removed["state"] == CURRENT:
            removed.update(state=REMOVED, ended_at=e.timestamp)
        batch.note(e, position, "document_removed", e.actor, document_id=e.document_id)

    @apply.register
    def _(self, e: Case.DocumentScanned, position: int, batch: _Batch) -> None:
        batch.row(e)
        scanned = batch.document(e, e.document_id)
        if scanned is not None and scanned["state"] == CURRENT:
            scanned["scan"] = e.verdict
        batch.note(
            e,
            position,
            "document_scanned",
            e.actor,
            document_id=e.document_id,
            verdict=e.verdict,
            signature=e.signature,
        )

    @apply.register
    def _(self, e: Case.ApplicationSubmitted, position: int, batch: _Batch) -> None:
        row = batch.row(e)
        row["status"] = CaseStatus.APPLICATION_SUBMITTED.value
        batch.count(row, "application_submitted")
        for sent in e.documents:
            batch.referenced(str(sent["digest"]), position)
        batch.note(e, position, "application_submitted", e.actor, documents=len(e.documents))

    @staticmethod
    def _decided(
        e: Any, position: int, batch: _Batch, status: CaseStatus, what: str, **details: Any
    ) -> None:
        row = batch.row(e)
        row.update(status=status.value, decided_at=e.timestamp)
        batch.count(row, what)
        batch.note(e, position, what, staff(e.officer_id), note=e.note, **details)


def _insert_new(connection: Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert the rows whose key is not there yet; leave those already there as they are."""
    if not rows:
        return
    insert = (postgresql if connection.dialect.name == "postgresql" else sqlite).insert
    keys = [c.name for c in table.primary_key.columns]
    connection.execute(insert(table).on_conflict_do_nothing(index_elements=keys), list(rows))
