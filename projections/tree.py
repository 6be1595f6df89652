"""The Merkle tree of each log, kept by a follower, and the checks of `carepath audit verify`.

The follower reads a log's stored events in notification order, hashes each one's canonical
record (domain/evidence.py) into a leaf, and appends it: leaves, the tree's compact state and the
checkpoints it asks for are written with its position in one transaction. A checkpoint is asked
for every `every` events and at each intake's opening and closing; `sign_due` signs them into the
Checkpoints application (domain/checkpoints.py), once each.

`verify_log` recomputes every leaf from the stored events, matches them by notification id with
the tree's leaves, and compares the roots at every signed checkpoint: an altered, deleted,
inserted or reordered event is reported with its position.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from eventsourcing.application import Application
from eventsourcing.persistence import PersistenceError
from eventsourcing.utils import get_topic
from sqlalchemy.engine import Connection, Engine

from domain.checkpoints import Checkpoints, SignedCheckpoint
from domain.evidence import EvidenceError, Record, record_of
from domain.intake import Intake
from domain.merkle import Frontier
from domain.signed_note import Checkpoint as CheckpointBody
from domain.signed_note import NoteError, Verifier, open_note
from projections.views import StaleBatch, audit_due, audit_leaves, audit_trees, writing

log = logging.getLogger(__name__)

BATCH = 1000
EVERY = 1000  # a checkpoint every this many events of a log, unless configured
POLL_SECONDS = 0.5
OPENED, CLOSED = get_topic(Intake.Opened), get_topic(Intake.Closed)
MARKS = {OPENED: "intake opened", CLOSED: "intake closed"}


class LogReader(Application[Any]):
    """Any application's log, read as stored: the tree needs its recorder and its cipher and
    compressor, nothing of the service around it."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name = name  # the library reads its settings and table names by this name
        super().__init__(env)


def record(app: Application[Any], notification: Any, key: bytes) -> Record:
    """The canonical record of one stored event of `app`'s log."""
    state = notification.state
    try:
        if app.mapper.cipher:
            state = app.mapper.cipher.decrypt(state)
        if app.mapper.compressor:
            state = app.mapper.compressor.decompress(state)
    except Exception as unreadable:  # noqa: BLE001 - each cipher and compressor raises its own
        raise EvidenceError(f"the stored state cannot be decrypted: {unreadable}") from None
    return record_of(
        app.name,
        notification.originator_id,
        notification.originator_version,
        notification.topic,
        state,
        key,
    )


def stored(app: Application[Any], after: int = 0, batch: int = BATCH) -> Iterator[Any]:
    """Every stored event of the log after notification id `after`, in order."""
    while True:
        page = app.recorder.select_notifications(start=after, limit=batch, inclusive_of_start=False)
        yield from page
        if len(page) < batch:
            return
        after = page[-1].id


def _frontier(row: Any) -> Frontier:
    if row is None:
        return Frontier()
    raw = bytes(row.frontier)
    return Frontier(int(row.size), [raw[i : i + 32] for i in range(0, len(raw), 32)])


@dataclass(frozen=True)
class TreeState:
    log: str
    size: int
    notification_id: int
    root: bytes


def tree_state(connection: Connection, log_name: str) -> TreeState:
    row = connection.execute(sa.select(audit_trees).where(audit_trees.c.log == log_name)).first()
    frontier = _frontier(row)
    return TreeState(
        log_name, frontier.size, int(row.notification_id) if row else 0, frontier.root()
    )


class TreeFollower:
    """Keeps the Merkle tree of one application's log."""

    def __init__(self, engine: Engine, app: Application[Any], key: bytes, every: int = EVERY):
        self.engine = engine
        self.app = app
        self.key = key
        self.every = max(1, every)

    def advance(self, batch: int = BATCH) -> int:
        """Append the log's next events (at most `batch`); returns how many."""
        with self.engine.connect() as connection:
            state = tree_state(connection, self.app.name)
        page = self.app.recorder.select_notifications(
            start=state.notification_id, limit=batch, inclusive_of_start=False
        )
        if not page:
            return 0
        with writing(self.engine) as connection:
            row = connection.execute(
                sa.select(audit_trees).where(audit_trees.c.log == self.app.name)
            ).first()
            if (int(row.notification_id) if row else 0) != state.notification_id:
                raise StaleBatch(f"the tree of {self.app.name} moved underneath its follower")
            frontier = _frontier(row)
            leaves, due = [], []
            for notification in page:
                leaf = record(self.app, notification, self.key).leaf()
                leaves.append(
                    {
                        "log": self.app.name,
                        "leaf_index": frontier.size,
                        "notification_id": notification.id,
                        "leaf_hash": leaf,
                    }
                )
                frontier.append(leaf)
                reasons = []
                if frontier.size % self.every == 0:
                    reasons.append(f"every {self.every}")
                if notification.topic in MARKS:
                    reasons.append(MARKS[notification.topic])
                if reasons:
                    due.append(
                        {
                            "log": self.app.name,
                            "size": frontier.size,
                            "root_hash": frontier.root(),
                            "reasons": ",".join(reasons),
                        }
                    )
            connection.execute(audit_leaves.insert(), leaves)
            values = {
                "size": frontier.size,
                "notification_id": page[-1].id,
                "frontier": b"".join(frontier.hashes),
            }
            if row is None:
                connection.execute(audit_trees.insert().values(log=self.app.name, **values))
            else:
                connection.execute(
                    audit_trees.update().where(audit_trees.c.log == self.app.name).values(**values)
                )
            if due:
                connection.execute(audit_due.insert(), due)
        return len(page)

    def catch_up(self, batch: int = BATCH, progress: Callable[[int], None] | None = None) -> int:
        total = 0
        while True:
            added = self.advance(batch)
            if not added:
                return total
            total += added
            if progress:
                progress(added)


def sign_due(engine: Engine, checkpoints: Checkpoints) -> int:
    """Sign and record every checkpoint the trees asked for; returns how many were new."""
    with engine.connect() as connection:
        rows = list(connection.execute(sa.select(audit_due).order_by(audit_due.c.size)))
    signed = 0
    for row in rows:
        if checkpoints.record(row.log, int(row.size), bytes(row.root_hash), row.reasons.split(",")):
            signed += 1
        with writing(engine) as connection:
            connection.execute(
                audit_due.delete().where(audit_due.c.log == row.log, audit_due.c.size == row.size)
            )
    return signed


def sign_now(engine: Engine, checkpoints: Checkpoints, log_name: str) -> TreeState:
    """A checkpoint of the tree as it stands (`carepath audit checkpoint`)."""
    with engine.connect() as connection:
        state = tree_state(connection, log_name)
    if state.size:
        checkpoints.record(log_name, state.size, state.root, ["on demand"])
    return state


def follow_trees(
    followers: Sequence[TreeFollower],
    checkpoints: Checkpoints,
    stop: threading.Event,
    poll_seconds: float = POLL_SECONDS,
) -> None:
    """Keep every tree up to date and sign what they ask for, until `stop` is set."""
    failing: set[str] = set()
    while not stop.is_set():
        added = 0
        for follower in followers:
            try:
                added += follower.advance()
            except PersistenceError as down:  # one log's store away must not stop the others'
                if follower.app.name not in failing:
                    log.warning("the tree of %s cannot advance: %s", follower.app.name, down)
                failing.add(follower.app.name)
            else:
                failing.discard(follower.app.name)
        if checkpoints.signer is not None:
            try:
                sign_due(followers[0].engine, checkpoints)
            except PersistenceError as down:
                if "signing" not in failing:
                    log.warning("checkpoints cannot be signed: %s", down)
                failing.add("signing")
            else:
                failing.discard("signing")
        if not added:
            stop.wait(poll_seconds)


# Verification


@dataclass
class Finding:
    log: str
    position: int  # the leaf index (0-based) the finding concerns
    notification_id: int | None
    what: str

    def __str__(self) -> str:
        where = f"position {self.position}"
        if self.notification_id is not None:
            where += f" (notification id {self.notification_id})"
        return f"{self.log} {where}: {self.what}"


@dataclass
class LogReport:
    log: str
    events: int = 0
    tree_size: int = 0
    checkpoints: int = 0
    behind: int = 0  # stored events the tree has not reached yet (the follower's lag)
    findings: list[Finding] = field(default_factory=list)


def _tree_leaves(engine: Engine, log_name: str, batch: int = BATCH * 10) -> Iterator[Any]:
    after = -1
    while True:
        with engine.connect() as connection:
            rows = list(
                connection.execute(
                    sa.select(audit_leaves)
                    .where(audit_leaves.c.log == log_name, audit_leaves.c.leaf_index > after)
                    .order_by(audit_leaves.c.leaf_index)
                    .limit(batch)
                )
            )
        yield from rows
        if len(rows) < batch:
            return
        after = int(rows[-1].leaf_index)


def verify_log(
    engine: Engine,
    app: Application[Any],
    key: bytes,
    checkpoints: Sequence[SignedCheckpoint | str],
    verifier: Verifier | None,
    progress: Callable[[int], None] | None = None,
) -> LogReport:
    """Check one log against its tree and its signed checkpoints (recorded or published notes)."""
    report = LogReport(app.name)
    with engine.connect() as connection:
        tree = tree_state(connection, app.name)
    report.tree_size = tree.size
    sizes = _checkpoint_sizes(report, app.name, checkpoints, verifier)
    report.checkpoints = len(sizes)

    ours, theirs = Frontier(), Frontier()  # the log's tree as stored, and the tree table's
    leaves = _tree_leaves(engine, app.name)
    pending = next(leaves, None)
    tree_leaves_seen = 0

    def tree_leaf_done(row: Any) -> None:
        nonlocal tree_leaves_seen
        if int(row.leaf_index) != tree_leaves_seen:
            report.findings.append(
                Finding(app.name, tree_leaves_seen, None, "the tree skips a position")
            )
        theirs.append(bytes(row.leaf_hash))
        tree_leaves_seen += 1
        _check_root(report, theirs, sizes, "the tree's leaves")

    count = 0
    for notification in stored(app):
        count += 1
        if progress and count % BATCH == 0:
            progress(BATCH)
        position = ours.size
        try:
            leaf = record(app, notification, key).leaf()
        except EvidenceError as unreadable:
            report.findings.append(Finding(app.name, position, notification.id, str(unreadable)))
            leaf = b"\xff" * 32  # stands in for the unreadable event, so positions stay aligned
        # Tree leaves for events no longer stored: deleted.
        while pending is not None and int(pending.notification_id) < notification.id:
            report.findings.append(
                Finding(
                    app.name,
                    int(pending.leaf_index),
                    int(pending.notification_id),
                    "an event in the tree is missing from the log (deleted)",
                )
            )
            tree_leaf_done(pending)
            pending = next(leaves, None)
        if pending is not None and int(pending.notification_id) == notification.id:
            if bytes(pending.leaf_hash) != leaf:
                report.findings.append(
                    Finding(
                        app.name,
                        int(pending.leaf_index),
                        notification.id,
                        "the stored event does not match its leaf (altered)",
                    )
                )
            tree_leaf_done(pending)
            pending = next(leaves, None)
        elif notification.id <= tree.notification_id:
            report.findings.append(
                Finding(
                    app.name,
                    position,
                    notification.id,
                    "the log holds an event the tree never saw (inserted)",
                )
            )
        else:
            report.behind += 1
        ours.append(leaf)
        _check_root(report, ours, sizes, "the stored events")
    while pending is not None:
        report.findings.append(
            Finding(
                app.name,
                int(pending.leaf_index),
                int(pending.notification_id),
                "an event in the tree is missing from the log (deleted)",
            )
        )
        tree_leaf_done(pending)
        pending = next(leaves, None)
    if progress:
        progress(count % BATCH)
    report.events = count
    if theirs.size != tree.size or (tree.size and theirs.root() != tree.root):
        report.findings.append(
            Finding(app.name, tree.size, None, "the tree's state does not match its leaves")
        )
    for size in sorted(sizes):
        if size > ours.size:
            report.findings.append(
                Finding(
                    app.name,
                    ours.size,
                    None,
                    f"a checkpoint of {size} events was signed, the log has {ours.size}",
                )
            )
    return report


def _checkpoint_sizes(
    report: LogReport,
    log_name: str,
    checkpoints: Sequence[SignedCheckpoint | str],
    verifier: Verifier | None,
) -> dict[int, bytes]:
    """size -> root of this log's checkpoints whose signatures verify (the others are findings)."""
    sizes: dict[int, bytes] = {}
    for checkpoint in checkpoints:
        note = checkpoint if isinstance(checkpoint, str) else checkpoint.note
        if note.partition("\n")[0].rpartition("/")[2] != log_name:
            continue  # another log's
        try:
            if verifier is None:
                raise NoteError("no verifier key to check it with")
            body = CheckpointBody.parse(open_note(note, verifier))
        except NoteError as bad:
            report.findings.append(Finding(log_name, 0, None, f"a checkpoint is refused: {bad}"))
            continue
        if sizes.setdefault(body.size, body.root) != body.root:
            report.findings.append(
                Finding(log_name, body.size, None, "two signed checkpoints of one size differ")
            )
    return sizes


def _check_root(report: LogReport, frontier: Frontier, sizes: dict[int, bytes], whose: str) -> None:
    expected = sizes.get(frontier.size)
    if expected is not None and frontier.root() != expected:
        report.findings.append(
            Finding(
                report.log,
                frontier.size - 1,
                None,
                f"{whose} do not match the checkpoint signed at {frontier.size} events"
                " (a change at or before this position)",
            )
        )
