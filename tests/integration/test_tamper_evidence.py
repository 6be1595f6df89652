"""The Merkle tree of each log, its signed checkpoints and `audit verify`: an untouched log
verifies clean; a byte flipped, an event deleted, inserted or two swapped directly in the database
is reported at the position where it was made, on SQLite and on PostgreSQL.

bench/tamper_trials.py runs the same trials a thousand times over a 10,000-event log."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from domain.allocator import Allocator
from domain.checkpoints import Checkpoints, parse_notes
from domain.evidence import salt_key
from domain.merkle import Frontier
from domain.registry import Registry
from domain.signed_note import Signer
from projections.persistence import application_env
from projections.tree import (
    LogReader,
    TreeFollower,
    record,
    sign_due,
    sign_now,
    stored,
    verify_log,
)
from projections.views import audit_leaves, make_engine, migrate
from projections.worker import Worker
from tests.conftest import submit_person
from tests.integration.tamper import KINDS, StoredLog

CODE = "tamper"
EVERY = 50


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request: pytest.FixtureRequest) -> dict[str, str]:
    return dict(
        request.getfixturevalue("postgres_db" if request.param == "postgres" else "sqlite_env")
    )


@dataclass
class Logged:
    storage: dict[str, str]
    engine: Any
    reader: LogReader
    checkpoints: Checkpoints
    key: bytes

    def follower(self) -> TreeFollower:
        return TreeFollower(self.engine, self.reader, self.key, EVERY)

    def verify(self, notes: list[Any] | None = None) -> Any:
        recorded = list(self.checkpoints.all()) if notes is None else notes
        return verify_log(self.engine, self.reader, self.key, recorded, self.checkpoints.verifier)

    def leaf_index(self, notification_id: int) -> int:
        with self.engine.connect() as connection:
            return int(
                connection.execute(
                    sa.select(audit_leaves.c.leaf_index).where(
                        audit_leaves.c.log == Registry.name,
                        audit_leaves.c.notification_id == notification_id,
                    )
                ).scalar_one()
            )


def fill(storage: dict[str, str], people: int) -> None:
    """An intake with `people` registrations submitted, and the allocator's decisions."""
    secret = storage["CAREPATH_SECRET"].encode()
    env = application_env(storage, Registry.name, create_table=True)
    env["GROUP_COMMIT"] = "n"
    registry = Registry(env=env, secret=secret)
    Allocator(env=application_env(storage, Allocator.name, create_table=True)).close()
    try:
        registry.define_intake(
            code=CODE, name="Tamper", stream="", capacity=10, policy="first_come", actor="t"
        )
        registry.open_intake(CODE, actor="t")
        for n in range(people):
            submit_person(registry, CODE, n)
        registry.close_intake(CODE, actor="t")
    finally:
        registry.close()
    migrate(storage)
    Worker(storage, secret).settle()


@pytest.fixture
def logged(storage: dict[str, str]) -> Iterator[Logged]:
    fill(storage, 40)
    engine = make_engine(storage)
    reader = LogReader(Registry.name, application_env(storage, Registry.name, create_table=False))
    checkpoints = Checkpoints(
        env=application_env(storage, Checkpoints.name, create_table=True),
        signer=Signer.generate("carepath.test"),
    )
    run = Logged(
        storage, engine, reader, checkpoints, salt_key(storage["CAREPATH_SECRET"].encode())
    )
    run.follower().catch_up()
    sign_due(engine, checkpoints)
    sign_now(engine, checkpoints, Registry.name)
    yield run
    checkpoints.close()
    reader.close()
    engine.dispose()


def test_an_untouched_log_verifies_clean_against_its_tree_and_checkpoints(logged: Logged) -> None:
    report = logged.verify()

    assert report.findings == []
    assert report.events == report.tree_size > 200
    # every 50 events, the opening and the close, and the one on demand
    assert report.checkpoints >= report.tree_size // EVERY + 2


def test_the_tree_root_is_the_rfc_9162_root_of_the_stored_records(logged: Logged) -> None:
    leaves = [record(logged.reader, n, logged.key).leaf() for n in stored(logged.reader)]
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    newest = max(logged.checkpoints.all(), key=lambda c: c.size)

    assert newest.size == len(leaves)
    assert newest.root == frontier.root()


@pytest.mark.parametrize("kind", KINDS)
def test_tampering_directly_in_the_database_is_reported_where_it_was_made(
    logged: Logged, kind: str
) -> None:
    rng = random.Random(f"{kind}-{logged.storage.get('PERSISTENCE_MODULE')}")
    with StoredLog.open(logged.storage, Registry.name) as log:
        for _ in range(8):
            change = log.tamper(kind, rng)
            try:
                report = logged.verify()
            finally:
                change.undo()
            expected = [logged.leaf_index(nid) for nid in change.notification_ids]
            positions = {finding.position for finding in report.findings}

            assert report.findings, f"{kind} at {change.notification_ids} went unnoticed"
            assert min(positions) == expected[0], [str(f) for f in report.findings[:3]]
            assert set(expected) <= positions
    assert logged.verify().findings == []  # every change was undone


def test_a_rewritten_tree_is_caught_by_the_signed_checkpoints(logged: Logged) -> None:
    """Whoever alters an event and its leaf in the tree table alike cannot re-sign."""
    with StoredLog.open(logged.storage, Registry.name) as log:
        nid = log.ids()[30]
        state = bytes(log.row(nid)[3])
        earlier = state.replace(b'"_data_":"20', b'"_data_":"19', 1)  # still JSON, a year changed
        assert earlier != state
        log.execute(f"UPDATE {log.table} SET state = ? WHERE {log.id} = ?", earlier, nid)
    altered = record(logged.reader, next(stored(logged.reader, nid - 1)), logged.key)
    with logged.engine.begin() as connection:
        connection.execute(
            audit_leaves.update()
            .where(audit_leaves.c.log == Registry.name, audit_leaves.c.notification_id == nid)
            .values(leaf_hash=altered.leaf())
        )

    report = logged.verify()

    assert any("checkpoint signed at" in f.what for f in report.findings)
    assert min(f.position for f in report.findings) >= logged.leaf_index(nid)


def test_published_checkpoints_are_checked_and_forged_ones_are_refused(logged: Logged) -> None:
    ours = logged.checkpoints.all()
    published = "".join(c.note for c in ours)
    origin, size, root = ours[0].note.split("\n")[:3]
    other_key = Signer.generate("carepath.test").sign(f"{origin}\n{size}\n{'A' * 43}=\n")
    altered = ours[0].note.replace(root, "A" * 43 + "=")

    notes = parse_notes(published + other_key + altered)

    assert len(notes) == len(ours) + 2
    report = logged.verify(notes)
    assert sorted(f.what for f in report.findings) == [
        "a checkpoint is refused: the note has no signature by carepath.test",
        "a checkpoint is refused: the signature of carepath.test does not verify",
    ]
