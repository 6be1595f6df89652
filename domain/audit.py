"""Recomputing a lottery from the logs alone, the way an independent auditor would.

`recompute_draw` rebuilds the entries of an intake from the Registry's log (registrations
submitted between the intake's opening and its closing, less those withdrawn before the close),
checks the revealed seed against the commitment recorded at opening, recomputes the entries digest,
the combined seed and the ranking with the published algorithm (domain.policies), and compares each
with what the Allocator recorded in the intake's Ledger.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from domain.case import Case
from domain.intake import Intake
from domain.ledger import Ledger
from domain.policies import commitment, fairness, lottery_ranking


@dataclass
class DrawAudit:
    """What the recomputation found; `ok` only if every check held."""

    intake_id: UUID
    entries: int = 0
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    fairness: dict[str, Any] | None = None  # as the ledger recorded it, once recomputed

    def check(self, name: str, held: bool, detail: str = "") -> None:
        self.checks.append((name, held, detail))

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(held for _, held, _ in self.checks)


def entries_from_registry(
    registry_events: Iterable[Any], intake_id: UUID
) -> tuple[list[UUID], str | None, str | None]:
    """(entries in the order submitted, seed commitment, revealed seed) from the Registry's log."""
    entries: dict[UUID, None] = {}
    opened = closed = False
    promised: str | None = None
    seed: str | None = None
    for event in registry_events:
        if isinstance(event, Intake.Opened) and event.originator_id == intake_id:
            opened, promised = True, event.seed_commitment
        elif isinstance(event, Intake.Closed) and event.originator_id == intake_id:
            closed, seed = True, event.seed
        elif isinstance(event, Case.Submitted) and event.intake_id == intake_id:
            if opened and not closed:
                entries[event.originator_id] = None
        elif isinstance(event, Case.Withdrawn) and event.intake_id == intake_id and not closed:
            entries.pop(event.originator_id, None)
    return list(entries), promised, seed


def recompute_draw(
    registry_events: Iterable[Any], ledger_events: Iterable[Any], intake_id: UUID
) -> DrawAudit:
    audit = DrawAudit(intake_id)
    entries, promised, seed = entries_from_registry(registry_events, intake_id)
    audit.entries = len(entries)
    ledger = list(ledger_events)
    draws = [e for e in ledger if isinstance(e, Ledger.DrawMade)]
    audit.check("the ledger records one draw", len(draws) == 1, f"{len(draws)} found")
    audit.check("the intake was closed and its seed revealed", bool(seed))
    if len(draws) != 1 or not seed:
        return audit
    draw = draws[0]
    audit.check(
        "the revealed seed matches the commitment made at opening",
        bool(promised) and commitment(seed) == promised,
        f"sha256(seed) = {commitment(seed)}, committed {promised}",
    )
    audit.check("the ledger drew with the revealed seed", draw.seed == seed)
    digest, combined, ranked = lottery_ranking(seed, entries)
    audit.check(
        "the number of entries matches",
        draw.entries == len(entries),
        f"log {len(entries)}, ledger {draw.entries}",
    )
    audit.check("the entries digest matches", draw.entries_digest == digest, digest)
    audit.check("the combined seed matches", draw.combined_seed == combined, combined)
    after = ledger[ledger.index(draw) + 1 :]
    decided = [
        e.case_id
        for e in after
        if isinstance(e, Ledger.PlaceGranted | Ledger.Waitlisted | Ledger.NotSelected)
    ][: len(ranked)]
    first_wrong = next(
        (i for i, (a, b) in enumerate(zip(ranked, decided, strict=False)) if a != b), None
    )
    audit.check(
        "the ledger decided on the entries in the recomputed rank order",
        decided == ranked,
        "all in order" if decided == ranked else f"first difference at rank {first_wrong}",
    )
    granted = draw_grants(after, len(ranked))
    recomputed = fairness(entries, granted).as_dict()
    recorded = dict(draw.fairness)
    same = all(recomputed.get(key) == value for key, value in recorded.items())
    audit.check(
        "the fairness figures match a recomputation from the log",
        same,
        f"{len(granted)} selected of {len(entries)}",
    )
    audit.fairness = recorded
    return audit


def draw_grants(after_draw: list[Any], entries: int) -> set[UUID]:
    """Who the draw itself selected: the places granted among its first `entries` decisions
    (a place granted later, to someone moving up the waitlist, is not the draw's)."""
    granted: set[UUID] = set()
    decided = 0
    for event in after_draw:
        if decided == entries:
            break
        if isinstance(event, Ledger.PlaceGranted | Ledger.Waitlisted | Ledger.NotSelected):
            decided += 1
            if isinstance(event, Ledger.PlaceGranted):
                granted.add(event.case_id)
    return granted


IGNORED_FIELDS = {"timestamp"}  # set by the clock when an event is made, not by the decision


def decisions(events: Iterable[Any]) -> list[tuple[str, dict[str, Any]]]:
    """Ledger events as comparable (kind, fields) pairs, without their creation timestamps."""
    return [
        (
            type(e).__qualname__,
            {k: v for k, v in vars(e).items() if k not in IGNORED_FIELDS},
        )
        for e in events
    ]


def same_decision(stored: tuple[str, dict[str, Any]], replayed: tuple[str, dict[str, Any]]) -> bool:
    """Equal, except that a draw recorded before a fairness figure existed (`rank_sum`, added
    2026-12-03) is compared on the figures it has: the figures are derived from the draw, and
    `recompute_draw` checks those it records against the log."""
    if stored[0] != replayed[0] or stored[0] != "Ledger.DrawMade":
        return stored == replayed
    ours, theirs = dict(stored[1]), dict(replayed[1])
    recorded = ours.pop("fairness")
    figures = theirs.pop("fairness")
    return ours == theirs and {k: figures.get(k) for k in recorded} == recorded


def compare_ledgers(stored: Iterable[Any], replayed: Iterable[Any]) -> tuple[bool, str]:
    """Is the stored ledger what a fresh allocator replaying the Registry's log records?"""
    ours, theirs = decisions(stored), decisions(replayed)
    for position, (a, b) in enumerate(zip(ours, theirs, strict=False), start=1):
        if not same_decision(a, b):
            return False, f"event {position} differs: stored {a[0]}, replayed {b[0]}"
    if len(ours) != len(theirs):
        return False, f"stored {len(ours)} events, replay made {len(theirs)}"
    return True, f"{len(ours)} events identical"
