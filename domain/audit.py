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
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.beacon import KNOWN_CHAINS, BeaconError, Chain, round_time, verify
from domain.case import Case
from domain.intake import Intake
from domain.ledger import Ledger
from domain.policies import (
    commitment,
    draw_round,
    draw_seed,
    entries_digest,
    fairness,
    lottery_ranking,
)
from domain.values import DrawMode


@dataclass
class DrawAudit:
    """What the recomputation found; `ok` only if every check held."""

    intake_id: UUID
    entries: int = 0
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    fairness: dict[str, Any] | None = None  # as the ledger recorded it, once recomputed

    warnings: list[str] = field(default_factory=list)

    def check(self, name: str, held: bool, detail: str = "") -> None:
        self.checks.append((name, held, detail))

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(held for _, held, _ in self.checks)


@dataclass
class DrawLog:
    """What the Registry's log says about one lottery."""

    entries: list[UUID] = field(default_factory=list)  # in the order submitted
    commitment: str | None = None
    plan: dict[str, Any] = field(default_factory=dict)  # Intake.Opened.draw
    closed_at: datetime | None = None
    seed: str = ""  # a legacy lottery's, revealed at the close
    inputs: Any = None  # the Intake.DrawInputsRecorded event


def draw_log(registry_events: Iterable[Any], intake_id: UUID) -> DrawLog:
    """Entries: every Case.Submitted of the intake after its Intake.Opened and before its
    Intake.Closed in log order, less those with a Case.Withdrawn before the close."""
    found = DrawLog()
    entries: dict[UUID, None] = {}
    opened = closed = False
    for event in registry_events:
        if isinstance(event, Intake.Opened) and event.originator_id == intake_id:
            opened, found.commitment, found.plan = True, event.seed_commitment, dict(event.draw)
        elif isinstance(event, Intake.Closed) and event.originator_id == intake_id:
            closed, found.seed, found.closed_at = True, event.seed, event.timestamp
        elif isinstance(event, Intake.DrawInputsRecorded) and event.originator_id == intake_id:
            found.inputs = event
        elif isinstance(event, Case.Submitted) and event.intake_id == intake_id:
            if opened and not closed:
                entries[event.originator_id] = None
        elif isinstance(event, Case.Withdrawn) and event.intake_id == intake_id and not closed:
            entries.pop(event.originator_id, None)
    found.entries = list(entries)
    return found


def entries_from_registry(
    registry_events: Iterable[Any], intake_id: UUID
) -> tuple[list[UUID], str | None, str | None]:
    """(entries in the order submitted, seed commitment, revealed legacy seed)."""
    found = draw_log(registry_events, intake_id)
    return found.entries, found.commitment, found.seed or None


def _check_inputs(audit: DrawAudit, log: DrawLog, digest: str, ledger: list[Any]) -> str | None:
    """The checks of a beacon or operator draw's inputs; returns the seed they give."""
    inputs = log.inputs
    fixed = [e for e in ledger if isinstance(e, Ledger.EntriesFixed)]
    audit.check(
        "the ledger fixed the entries at the close, before the draw's inputs existed",
        len(fixed) == 1 and fixed[0].entries_digest == digest,
        f"digest at the close {fixed[0].entries_digest if fixed else 'missing'}",
    )
    audit.check("the draw's inputs were recorded after the close", inputs is not None)
    if inputs is None:
        return None
    audit.check(
        "the revealed secret matches the commitment made at opening",
        bool(log.commitment) and commitment(inputs.secret) == log.commitment,
        f"sha256(secret) = {commitment(inputs.secret)}, committed {log.commitment}",
    )
    mode = log.plan.get("mode")
    audit.check("the draw's source is the one fixed at opening", inputs.source == mode, str(mode))
    if mode == DrawMode.OPERATOR.value:
        audit.warn(
            "this draw used a value the operator supplied after the close, not a public beacon:"
            " it is only as trustworthy as the operator, who also held the secret"
        )
    elif mode == DrawMode.BEACON.value:
        _check_beacon(audit, log, inputs)
    return draw_seed(inputs.secret, inputs.randomness)


def _check_beacon(audit: DrawAudit, log: DrawLog, inputs: Any) -> None:
    try:
        chain = Chain.from_dict(log.plan.get("chain", {}))
    except BeaconError as error:
        audit.check("the beacon chain fixed at opening is readable", False, str(error))
        return
    known = KNOWN_CHAINS.get(chain.name)
    audit.check(
        "the beacon chain fixed at opening is the published one",
        known is not None and known == chain,
        f"{chain.name}, chain hash {chain.chain_hash}",
    )
    closed = log.closed_at.timestamp() if log.closed_at else 0.0
    expected = draw_round(
        int(log.plan.get("round", 0)),
        chain.genesis_time,
        chain.period,
        closed,
        int(log.plan.get("delay_seconds", 0)),
    )
    audit.check(
        "the beacon round is the one fixed at opening (or the first one after a late close)",
        inputs.round == expected,
        f"round {inputs.round}, fixed {log.plan.get('round')}, expected {expected}",
    )
    published = round_time(chain, inputs.round)
    audit.check(
        "the beacon round was published after the close",
        log.closed_at is not None and published > log.closed_at,
        f"round at {published.isoformat()}, closed "
        f"{log.closed_at.isoformat() if log.closed_at else 'never'}",
    )
    try:
        randomness = verify(chain, inputs.round, inputs.signature)
    except BeaconError as error:
        audit.check("the beacon's signature of the round verifies", False, str(error))
        return
    audit.check("the beacon's signature of the round verifies", True, "BLS12-381, the chain's key")
    audit.check(
        "the randomness is SHA-256 of the beacon's signature",
        randomness == inputs.randomness,
        randomness,
    )


def recompute_draw(
    registry_events: Iterable[Any], ledger_events: Iterable[Any], intake_id: UUID
) -> DrawAudit:
    audit = DrawAudit(intake_id)
    log = draw_log(registry_events, intake_id)
    entries = log.entries
    audit.entries = len(entries)
    ledger = list(ledger_events)
    draws = [e for e in ledger if isinstance(e, Ledger.DrawMade)]
    audit.check("the ledger records one draw", len(draws) == 1, f"{len(draws)} found")
    if log.plan.get("mode", DrawMode.LEGACY.value) == DrawMode.LEGACY.value:
        seed: str | None = log.seed or None
        audit.check("the intake was closed and its seed revealed", bool(seed))
        if seed:
            audit.check(
                "the revealed seed matches the commitment made at opening",
                bool(log.commitment) and commitment(seed) == log.commitment,
                f"sha256(seed) = {commitment(seed)}, committed {log.commitment}",
            )
    else:
        seed = _check_inputs(audit, log, entries_digest(entries), ledger)
    if len(draws) != 1 or not seed:
        return audit
    draw = draws[0]
    audit.check("the ledger drew with the seed the log gives", draw.seed == seed, seed)
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
