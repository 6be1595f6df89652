"""Recompute a carepath lottery from its stored rows, as an outside auditor would.

Written from the README alone ("## Allocation": Terms, After a place is given, The lottery,
precisely, Ledger events, Stored rows), with the Python standard library only, and without
importing anything from carepath. It reads `<data dir>/registry.sqlite` and
`<data dir>/allocator.sqlite`, replays the intake's part of the Registry's log in position order,
derives every decision the README's rules give, and compares them, one by one, with the Ledger's
recorded events; then the draw's inputs, seed, combined seed, entries digest and fairness figures.

    python -I tests/independent/recompute.py DATA_DIR INTAKE_CODE

Exit status: 0 when everything matches, 1 when anything differs, 2 for bad arguments or
unreadable files. The BLS signature of a beacon round is not verified here (that needs a
pairing library); the randomness is checked against the signature.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sqlite3
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

GENERAL = "general"
DECISIONS = (
    "PlaceGranted",
    "Invited",
    "Waitlisted",
    "NotSelected",
    "LeftWaitlist",
    "PlaceReleased",
    "PlacesMoved",
    "OfferTakenUp",
)


class Refused(Exception):
    """The input cannot be read: exit 2 with this message."""


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def decode(value: Any) -> Any:
    """The README's "Stored rows": UUIDs and times are tagged objects; everything else is JSON."""
    if isinstance(value, dict):
        if set(value) == {"_type_", "_data_"}:
            if value["_type_"] == "uuid_hex":
                return value["_data_"]
            if value["_type_"] == "datetime_iso":
                return datetime.fromisoformat(value["_data_"])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


@dataclass
class Row:
    position: int
    originator_id: str
    version: int
    name: str  # the class name after the last dot of the topic: "Case.Submitted" -> "Submitted"
    kind: str  # the aggregate: "Case", "Intake", "Ledger"
    state: dict[str, Any]


def read_rows(path: Path) -> list[Row]:
    if not path.is_file():
        raise Refused(f"{path}: no such file")
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        found = connection.execute(
            "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events"
            " ORDER BY rowid"
        ).fetchall()
    except sqlite3.Error as error:
        raise Refused(f"{path}: {error}") from None
    rows = []
    for position, originator, version, topic, state in found:
        qualified = topic.split(":", 1)[-1]  # "domain.case:Case.Submitted" -> "Case.Submitted"
        kind, _, name = qualified.rpartition(".")
        try:
            data = json.loads(bytes(state).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise Refused(
                f"{path}: row {position} is not JSON (encrypted? CAREPATH_CIPHER_KEY)"
            ) from None
        rows.append(Row(position, originator, version, name, kind, decode(data)))
    return rows


# ---- pools, slots and waitlists (README, "Terms") ----


@dataclass
class Pool:
    name: str
    first: int  # its own range of slots, first..last
    last: int
    next_new: int  # the next slot of its own range never given
    released: set[int] = field(default_factory=set)  # given up, or moved to it
    waiting: list[str] = field(default_factory=list)  # case ids, lowest rank first
    next_rank: int = 1

    def free_slot(self) -> int | None:
        if self.released:
            return min(self.released)
        return self.next_new if self.next_new <= self.last else None

    def take(self) -> int:
        slot = self.free_slot()
        assert slot is not None
        if slot in self.released:
            self.released.remove(slot)
        else:
            self.next_new += 1
        return slot

    def all_free(self) -> list[int]:
        return sorted([*self.released, *range(self.next_new, self.last + 1)])


@dataclass
class Holder:
    slot: int
    pool: str
    deadline: datetime
    taken_up: bool = False


class Intake:
    """The README's rules for one intake, fed with its events in position order; `out` collects
    the Ledger events they give, as (name, fields)."""

    def __init__(self, defined: dict[str, Any]) -> None:
        self.policy = defined["policy"]
        self.capacity = int(defined["capacity"])
        reserved = {str(k): int(v) for k, v in (defined.get("pools") or {}).items()}
        self.waitlist_length = int(defined.get("waitlist_length", 0))
        self.days = int(defined.get("document_deadline_days", 28))
        # Intakes defined before 2026-12-04 keep their reserved places
        self.unused_moves = defined.get("unused_reserved", "kept") == "to_general"
        general = self.capacity - sum(reserved.values())
        self.pools = {GENERAL: Pool(GENERAL, 1, general, 1)}
        start = general + 1
        for name in sorted(reserved):
            self.pools[name] = Pool(name, start, start + reserved[name] - 1, start)
            start += reserved[name]
        self.slot_pool: dict[int, str] = {}  # a slot's pool, once moved
        self.holders: dict[str, Holder] = {}
        self.decided: set[str] = set()
        self.opened = False
        self.closed = False
        self.drawn = False
        self.commitment = ""
        self.draw_plan: dict[str, Any] = {}
        self.entries: list[tuple[str, str]] = []  # (case id, pool) in the order submitted
        self.withdrawn_before_close: set[str] = set()
        self.withdrawn_after_close: set[str] = set()
        self.entries_fixed: list[str] = []
        self.entry_events: list[tuple[str, dict[str, Any]]] = []  # EntryReceived, EntryWithdrawn
        self.out: list[tuple[str, dict[str, Any]]] = []
        self.draw: dict[str, Any] = {}
        self.inputs: dict[str, Any] = {}
        self.closed_at: datetime | None = None
        self.inputs_position = 0
        self.closed_position = 0

    def pool_of_slot(self, slot: int) -> str:
        if slot in self.slot_pool:
            return self.slot_pool[slot]
        for pool in self.pools.values():
            if pool.first <= slot <= pool.last:
                return pool.name
        raise ValueError(slot)

    # "Place or wait"
    def place_or_wait(self, case_id: str, pool_name: str, when: datetime) -> bool:
        pool = self.pools[pool_name]
        self.decided.add(case_id)
        if pool.free_slot() is not None:
            self.grant(case_id, pool, when)
            return True
        if self.waitlist_length == 0 or len(pool.waiting) < self.waitlist_length:
            pool.waiting.append(case_id)
            self.out.append(
                ("Waitlisted", {"case_id": case_id, "pool": pool_name, "rank": pool.next_rank})
            )
            pool.next_rank += 1
        else:
            self.out.append(
                ("NotSelected", {"case_id": case_id, "reason": "the waitlist was full"})
            )
        return False

    def grant(self, case_id: str, pool: Pool, when: datetime) -> None:
        slot = pool.take()
        deadline = when + timedelta(days=self.days)
        self.holders[case_id] = Holder(slot, pool.name, deadline)
        self.out.append(("PlaceGranted", {"case_id": case_id, "slot": slot, "pool": pool.name}))
        self.out.append(("Invited", {"case_id": case_id, "deadline": deadline}))

    def refill(self, pool_name: str, when: datetime, *, give_unused: bool = True) -> None:
        pool = self.pools[pool_name]
        while pool.free_slot() is not None and pool.waiting:
            self.grant(pool.waiting.pop(0), pool, when)
        # "from then on": only after a first-come intake's close or a lottery's draw
        moving = self.drawn if self.policy == "lottery" else self.closed
        if give_unused and self.unused_moves and pool_name != GENERAL and moving:
            self.give_unused(when)

    def give_unused(self, when: datetime) -> None:
        if not self.unused_moves:
            return
        moved = False
        general = self.pools[GENERAL]
        for name in sorted(n for n in self.pools if n != GENERAL):
            pool = self.pools[name]
            slots = pool.all_free()
            if pool.waiting or not slots:
                continue
            pool.released.clear()
            pool.next_new = pool.last + 1
            for slot in slots:
                self.slot_pool[slot] = GENERAL
                general.released.add(slot)
            self.out.append(
                ("PlacesMoved", {"from_pool": name, "to_pool": GENERAL, "slots": slots})
            )
            moved = True
        if moved:
            self.refill(GENERAL, when, give_unused=False)

    def release(self, case_id: str, reason: str, when: datetime) -> str:
        holder = self.holders.pop(case_id)
        self.out.append(
            ("PlaceReleased", {"case_id": case_id, "slot": holder.slot, "reason": reason})
        )
        pool = self.pool_of_slot(holder.slot)
        self.pools[pool].released.add(holder.slot)
        return pool

    # The Registry's events, in position order

    def feed(self, row: Row) -> None:
        s, when = row.state, row.state["timestamp"]
        if row.kind == "Intake":
            if row.name == "Opened":
                self.opened = True
                self.commitment = s.get("seed_commitment", "")
                self.draw_plan = s.get("draw") or {}
            elif row.name == "Closed":
                self.on_close(row)
            elif row.name == "DrawInputsRecorded":
                self.on_inputs(row)
            elif row.name == "DeadlinesChecked":
                self.on_deadlines(s["at"])
            return
        case_id = row.originator_id
        if row.name == "Submitted":
            self.on_submitted(case_id, s.get("pool") or GENERAL, when)
        elif row.name == "Withdrawn":
            self.on_withdrawn(case_id, when)
        elif row.name == "ReturnedIncomplete" and case_id in self.holders:
            self.refill(self.release(case_id, "returned_incomplete", when), when)
        elif row.name in ("ApplicationSubmitted", "AcceptedForProcessing"):
            holder = self.holders.get(case_id)
            in_time = row.name == "AcceptedForProcessing" or (holder and when < holder.deadline)
            if holder and not holder.taken_up and in_time:
                holder.taken_up = True
                self.out.append(("OfferTakenUp", {"case_id": case_id}))

    def on_submitted(self, case_id: str, pool: str, when: datetime) -> None:
        if case_id in self.decided or any(c == case_id for c, _ in self.entries):
            return  # one decision per case
        if self.closed:
            self.decided.add(case_id)
            self.out.append(
                ("NotSelected", {"case_id": case_id, "reason": "submitted after the intake closed"})
            )
        elif self.policy == "lottery":
            if self.opened:
                self.entries.append((case_id, pool))
                self.entry_events.append(("EntryReceived", {"case_id": case_id, "pool": pool}))
        else:
            self.place_or_wait(case_id, pool, when)

    def on_withdrawn(self, case_id: str, when: datetime) -> None:
        if self.policy == "lottery" and not self.drawn:
            gone = self.withdrawn_before_close | self.withdrawn_after_close
            if any(c == case_id for c, _ in self.entries) and case_id not in gone:
                (self.withdrawn_after_close if self.closed else self.withdrawn_before_close).add(
                    case_id
                )
                self.entry_events.append(("EntryWithdrawn", {"case_id": case_id}))
            return
        if case_id in self.holders:
            self.refill(self.release(case_id, "withdrawn", when), when)
            return
        for pool in self.pools.values():
            if case_id in pool.waiting:
                pool.waiting.remove(case_id)
                self.out.append(("LeftWaitlist", {"case_id": case_id, "reason": "withdrawn"}))
                return

    def on_close(self, row: Row) -> None:
        self.closed = True
        self.closed_at = row.state["timestamp"]
        self.closed_position = row.position
        if self.policy == "lottery":
            self.entries_fixed = [
                c for c, _ in self.entries if c not in self.withdrawn_before_close
            ]
        else:
            self.give_unused(row.state["timestamp"])

    def on_inputs(self, row: Row) -> None:
        self.inputs = dict(row.state)
        self.inputs_position = row.position
        secret, randomness = row.state["secret"], row.state["randomness"]
        fixed = [(c, p) for c, p in self.entries if c not in self.withdrawn_before_close]
        digest = sha256_hex("\n".join(sorted(c for c, _ in fixed)))
        seed = sha256_hex(secret + randomness)
        combined = sha256_hex(seed + digest)
        ranked = sorted(fixed, key=lambda entry: (sha256_hex(combined + entry[0]), entry[0]))
        when = row.state["timestamp"]
        selected: set[str] = set()
        for case_id, pool in ranked:
            if case_id in self.withdrawn_after_close:
                self.decided.add(case_id)
                self.out.append(
                    ("NotSelected", {"case_id": case_id, "reason": "withdrawn before the draw"})
                )
            elif self.place_or_wait(case_id, pool, when):
                selected.add(case_id)
        self.drawn = True
        self.draw = {
            "seed": seed,
            "entries": len(fixed),
            "entries_digest": digest,
            "combined_seed": combined,
            "fairness": fairness([c for c, _ in fixed], selected),
        }
        self.give_unused(when)

    def on_deadlines(self, at: datetime) -> None:
        due = sorted(
            (h.deadline, c) for c, h in self.holders.items() if not h.taken_up and h.deadline < at
        )
        order: list[str] = []
        for _, case_id in due:
            pool = self.release(case_id, "expired", at)
            if pool not in order:
                order.append(pool)
        for pool in order:
            self.refill(pool, at)


# ---- the fairness figures (README, after the draw's steps) ----


def upper_gamma_regularized(a: float, x: float) -> float:
    """Q(a, x) = Gamma(a, x) / Gamma(a): a series below a + 1, a continued fraction above."""
    if x <= 0:
        return 1.0
    log_front = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        n = a
        for _ in range(10_000):
            n += 1
            term *= x / n
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        return max(0.0, 1.0 - total * math.exp(log_front))
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-16:
            break
    return math.exp(log_front) * h


def fairness(entries: list[str], selected: set[str]) -> dict[str, Any]:
    n = len(entries)
    s = sum(1 for c in entries if c in selected)
    if n >= 10:
        bounds = [(g * n // 10, (g + 1) * n // 10) for g in range(10)]
    else:
        bounds = [(i, i + 1) for i in range(n)]
    deciles = [[hi - lo, sum(1 for c in entries[lo:hi] if c in selected)] for lo, hi in bounds]
    chi = 0.0
    for size, chosen in deciles:
        for observed, expected in ((chosen, size * s / n), (size - chosen, size * (1 - s / n))):
            if expected > 0:
                chi += (observed - expected) ** 2 / expected
    df = len(deciles) - 1
    p = 1.0 if s in (0, n) or len(deciles) == 1 else upper_gamma_regularized(df / 2, chi / 2)
    positions = [i + 1 for i, c in enumerate(entries) if c in selected]
    n1, n2 = len(positions), n - len(positions)
    u = sum(positions) - n1 * (n1 + 1) / 2
    if n1 == 0 or n2 == 0:
        z, rank_p = 0.0, 1.0
    else:
        centre = u - n1 * n2 / 2
        z = math.copysign(1, centre) * max(abs(centre) - 0.5, 0) / math.sqrt(n1 * n2 * (n + 1) / 12)
        rank_p = math.erfc(abs(z) / math.sqrt(2))
    return {
        "deciles": deciles,
        "chi_square": round(chi, 6),
        "degrees_of_freedom": df,
        "p_value": round(p, 6),
        "rank_sum": {
            "selected": n1,
            "others": n2,
            "u": u,
            "z": round(z, 6),
            "p_value": round(rank_p, 6),
        },
    }


# ---- comparing with the Ledger ----


class Report:
    def __init__(self) -> None:
        self.failed = 0

    def check(self, what: str, ok: bool, detail: str = "") -> None:
        self.failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {what}" + (f"  ({detail})" if detail else ""))


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, int | float) and isinstance(b, int | float) and abs(a - b) < 1e-9
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def run(data_dir: Path, code: str) -> int:
    registry = read_rows(data_dir / "registry.sqlite")
    ledger_rows = read_rows(data_dir / "allocator.sqlite")
    defined = [r for r in registry if r.kind == "Intake" and r.name == "Defined"]
    found = [r for r in defined if r.state.get("code") == code]
    if not found:
        codes = ", ".join(sorted(r.state.get("code", "?") for r in defined)) or "none"
        raise Refused(f"no intake {code!r} in {data_dir / 'registry.sqlite'} (intakes: {codes})")
    intake_id = found[0].originator_id
    started = [
        r for r in ledger_rows if r.kind == "Ledger" and r.name == "Started"
        and r.state.get("intake_id") == intake_id
    ]  # fmt: skip
    if not started:
        raise Refused(f"no Ledger for intake {code!r} in {data_dir / 'allocator.sqlite'}")
    ledger_id = started[0].originator_id
    recorded = sorted(
        (r for r in ledger_rows if r.originator_id == ledger_id), key=lambda r: r.version
    )

    intake = Intake(found[0].state)
    # the intake's own events, and the events of cases that name it
    for row in registry:
        if (row.kind == "Intake" and row.originator_id == intake_id and row.name != "Defined") or (
            row.kind == "Case" and row.state.get("intake_id") == intake_id
        ):
            intake.feed(row)
        elif row.kind == "Case" and row.name in (
            "ApplicationSubmitted", "AcceptedForProcessing", "ReturnedIncomplete"
        ):  # fmt: skip
            intake.feed(row)  # officers' events carry no intake id: only holders count

    report = Report()
    print(f"intake {code}: {intake.policy}, capacity {intake.capacity}, pools "
          + ", ".join(f"{p.name} {p.first}-{p.last}" for p in intake.pools.values()))  # fmt: skip
    if intake.policy == "lottery":
        check_draw(intake, recorded, report)
    ours = intake.out
    theirs = [(r.name, {k: v for k, v in r.state.items() if k != "timestamp"}) for r in recorded
              if r.name in DECISIONS]  # fmt: skip
    first = next(
        (i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if not (a[0] == b[0] and same(a[1], b[1]))),
        None,
    )  # fmt: skip
    if first is None and len(ours) != len(theirs):
        first = min(len(ours), len(theirs))
    detail = f"{len(ours)} decisions recomputed, {len(theirs)} recorded"
    if first is not None:
        mine = ours[first] if first < len(ours) else "nothing"
        recorded_one = theirs[first] if first < len(theirs) else "nothing"
        detail += f"; first difference at decision {first + 1}: recomputed {mine}, recorded {recorded_one}"
    report.check(
        "every decision of the Ledger, in order, follows from the log", first is None, detail
    )
    counts = {name: sum(1 for n, _ in ours if n == name) for name in DECISIONS}
    print("decisions: " + ", ".join(f"{name} {count}" for name, count in counts.items() if count))
    if report.failed:
        print(f"intake {code}: {report.failed} check(s) FAILED over {len(ours)} decisions")
        return 1
    print(f"intake {code}: every check passed; {len(ours)} decisions recomputed and matched")
    return 0


def check_draw(intake: Intake, recorded: list[Row], report: Report) -> None:
    by_name: dict[str, list[Row]] = {}
    for row in recorded:
        by_name.setdefault(row.name, []).append(row)
    report.check("the intake was opened with a commitment", bool(intake.commitment))
    mode = intake.draw_plan.get("mode", "legacy")
    if mode == "legacy":
        report.check("a draw this program recomputes (not a legacy one)", False, "legacy draw")
        return
    if not intake.inputs:
        report.check("the draw's inputs are recorded", False, "not yet: nothing to recompute")
        return
    secret = intake.inputs["secret"]
    report.check(
        "sha256(secret) equals the commitment made at opening",
        sha256_hex(secret) == intake.commitment,
        f"{sha256_hex(secret)[:16]}... vs {intake.commitment[:16]}...",
    )
    report.check(
        "the inputs were recorded after the close",
        intake.closed_position != 0 and intake.inputs_position > intake.closed_position,
        f"positions {intake.closed_position} and {intake.inputs_position}",
    )
    report.check("the source is the mode fixed at opening", intake.inputs["source"] == mode, mode)
    if mode == "beacon":
        signature = intake.inputs["signature"]
        report.check(
            "the randomness is SHA-256 of the beacon's signature",
            hashlib.sha256(bytes.fromhex(signature)).hexdigest() == intake.inputs["randomness"],
        )
    fixed = by_name.get("EntriesFixed", [])
    digest = intake.draw["entries_digest"]
    report.check(
        "the Ledger fixed the entries at the close with the digest of the entries",
        len(fixed) == 1 and fixed[0].state["entries_digest"] == digest
        and fixed[0].state["entries"] == intake.draw["entries"],
        f"{intake.draw['entries']} entries, digest {digest[:16]}...",
    )  # fmt: skip
    theirs_e = [
        (r.name, {k: v for k, v in r.state.items() if k != "timestamp"})
        for r in recorded if r.name in ("EntryReceived", "EntryWithdrawn")
    ]  # fmt: skip
    ours_e = intake.entry_events
    first_e = next((i for i, (a, b) in enumerate(zip(ours_e, theirs_e, strict=False))
                    if not (a[0] == b[0] and same(a[1], b[1]))), None)  # fmt: skip
    if first_e is None and len(ours_e) != len(theirs_e):
        first_e = min(len(ours_e), len(theirs_e))
    detail = f"{len(ours_e)} recomputed, {len(theirs_e)} recorded"
    if first_e is not None:
        mine = ours_e[first_e] if first_e < len(ours_e) else "nothing"
        theirs_one = theirs_e[first_e] if first_e < len(theirs_e) else "nothing"
        detail += f"; first difference at {first_e + 1}: recomputed {mine}, recorded {theirs_one}"
    report.check(
        "the Ledger received and withdrew the entries the log gives, in order",
        first_e is None,
        detail,
    )
    made = by_name.get("DrawMade", [])
    report.check("the Ledger records one draw", len(made) == 1, f"{len(made)} found")
    if len(made) != 1:
        return
    theirs = made[0].state
    for key in ("seed", "entries", "entries_digest", "combined_seed"):
        report.check(
            f"the draw's {key} matches", theirs.get(key) == intake.draw[key], str(intake.draw[key])
        )
    ours_f, theirs_f = intake.draw["fairness"], theirs.get("fairness", {})
    report.check("the fairness groups match", same(ours_f["deciles"], theirs_f.get("deciles")))
    for key in ("chi_square", "degrees_of_freedom", "p_value"):
        report.check(
            f"the fairness {key} matches", same(ours_f[key], theirs_f.get(key)), f"{ours_f[key]}"
        )
    report.check(
        "the rank-sum figures match", same(ours_f["rank_sum"], theirs_f.get("rank_sum")),
        json.dumps(ours_f["rank_sum"]),
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path, help="carepath's data dir (registry.sqlite, ...)")
    parser.add_argument("code", help="the intake's code")
    args = parser.parse_args(argv)
    try:
        return run(args.data_dir, args.code)
    except Refused as refused:
        print(f"error: {refused}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
