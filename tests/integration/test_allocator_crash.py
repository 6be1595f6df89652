"""Killing the allocator process (SIGKILL) at random points and restarting it records every
decision exactly once, on SQLite and on PostgreSQL, with a real `carepath worker` process.

The test seeds thousands of submitted registrations into a first-come intake, then starts the
worker and SIGKILLs its process group again and again: mostly just after it has committed a batch
(so the kill lands while the next batch is being decided, with work left over), sometimes at a
blind moment after the start. Between the kills it adds registrations, and a thread keeps adding
registrations and withdrawals while the worker runs. After the last kill the worker runs until the
allocator and the allocation view have nothing left to read, and is stopped with SIGTERM.

Then the stored Ledger must be, event for event, what a fresh in-memory allocator replaying the
Registry's log records; every submitted case has exactly one first decision (a case re-offered a
place after a withdrawal may follow its Waitlisted with one PlaceGranted); no slot is ever held
twice; every place is taken; and the allocation read model agrees with the Ledger.

Reproduce a run with CAREPATH_CRASH_SEED=<seed printed on failure>.
"""

from __future__ import annotations

import itertools
import os
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from domain.allocator import Allocator
from domain.audit import compare_ledgers
from domain.ledger import Ledger, ledger_id
from domain.registry import Registry
from projections.allocation import AllocationQueries, AllocationView
from projections.persistence import application_env
from projections.runner import catch_up
from projections.views import make_engine
from projections.worker import Worker
from tests.integration.daemons import Daemon
from tests.integration.seed import seed_submitted
from tests.integration.servers import carepath_env, run_carepath

pytestmark = pytest.mark.slow

INTAKE = "crash-alloc"
CAPACITY = 300
WAITLIST = 500
INITIAL = 3_000  # submitted before the worker first starts
BETWEEN_KILLS = 1_500  # submitted while the worker is down: each restart has 3+ batches to do
FEEDER_BATCH = 50  # submitted by the feeder thread per round trip while the worker runs
FEEDER_LIMIT = 1_000  # the feeder's total, so the run stays short
WITHDRAW_PER_BATCH = 3
# Kills just after a commit (the next batch in progress, more waiting) and at blind moments.
MODES = ("after-commit",) * 4 + ("blind",) * 2
KILLS = len(MODES)
MID_WORK_KILLS = 3  # at least this many kills must land with decided work behind and ahead
PROGRESS_TIMEOUT = 60.0  # seconds the test waits for the worker to commit a batch
DECISIONS = (Ledger.PlaceGranted, Ledger.Waitlisted, Ledger.NotSelected)


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request: pytest.FixtureRequest) -> dict[str, str]:
    return dict(
        request.getfixturevalue("postgres_db" if request.param == "postgres" else "sqlite_env")
    )


@dataclass
class Kill:
    mode: str  # "after-commit" or "blind"
    started_at: int  # the allocator's position when this run of the worker started
    position: int  # its committed position after the kill
    end: int  # the last followed position of the Registry's log just before the kill

    @property
    def mid_work(self) -> bool:
        return self.started_at < self.position < self.end


@dataclass
class Feeder:
    """Adds submitted registrations and withdrawals from another thread while the worker runs."""

    registry: Registry
    secret: bytes
    rng: random.Random
    next_n: int
    submitted: list[UUID]
    withdrawn: set[UUID] = field(default_factory=set)
    added: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[BaseException] = field(default_factory=list)

    def add(self, count: int) -> None:
        with self.lock:
            ids = seed_submitted(
                self.registry, self.secret, INTAKE, count, start=self.next_n, batch=250
            )
            self.next_n += count
            self.submitted.extend(ids)

    def withdraw_some(self, count: int) -> None:
        """Withdraw submitted cases: places held (re-offered), waitlist places, and others."""
        with self.lock:
            for _ in range(count):
                upper = self.rng.choice([CAPACITY, CAPACITY + WAITLIST, len(self.submitted)])
                case_id = self.submitted[self.rng.randrange(upper)]
                if case_id in self.withdrawn:
                    continue
                version = self.registry.get_case(case_id).version
                self.registry.withdraw(
                    case_id,
                    expected_version=version,
                    reason="found other work",
                    idempotency_key=f"withdraw-{case_id}",
                )
                self.withdrawn.add(case_id)

    def run(self) -> None:
        try:
            while not self.stop.is_set() and self.added < FEEDER_LIMIT:
                self.add(FEEDER_BATCH)
                self.added += FEEDER_BATCH
                self.withdraw_some(WITHDRAW_PER_BATCH)
                self.stop.wait(0.05)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.errors.append(error)


def followed_after(source: Any, topics: tuple[str, ...], after: int) -> tuple[int, int]:
    """(how many events of these topics follow `after` in the source's log, the last one's id)."""
    count, last = 0, after
    while True:
        page = source.recorder.select_notifications(
            start=last, limit=5_000, topics=topics, inclusive_of_start=False
        )
        if not page:
            return count, last
        count += len(page)
        last = page[-1].id


@pytest.fixture
def crash_seed() -> int:
    seed = int(os.environ.get("CAREPATH_CRASH_SEED") or secrets.randbits(32))
    print(f"CAREPATH_CRASH_SEED={seed}")
    return seed


@pytest.fixture
def worker_process(storage: dict[str, str], tmp_path: Path) -> Iterator[Daemon]:
    worker = Daemon.worker(carepath_env(storage), log_dir=tmp_path)
    yield worker
    worker.stop(grace=0)  # whatever is left of it, its whole group


def test_sigkilled_allocator_records_every_decision_exactly_once(
    storage: dict[str, str], worker_process: Daemon, crash_seed: int
) -> None:
    rng = random.Random(crash_seed)
    env = carepath_env(storage)
    secret = storage["CAREPATH_SECRET"].encode()
    run_carepath(env, "db", "init")
    run_carepath(
        env,
        "intake",
        "create",
        "--code",
        INTAKE,
        "--name",
        "Allocator crash test",
        "--capacity",
        str(CAPACITY),
        "--waitlist-length",
        str(WAITLIST),
    )
    run_carepath(env, "intake", "open", INTAKE)

    registry = Registry(env=application_env(storage, "Registry", create_table=False), secret=secret)
    feeding = Registry(env=application_env(storage, "Registry", create_table=False), secret=secret)
    allocator = Allocator(env=application_env(storage, "Allocator", create_table=False))
    replay = Allocator(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    engine = make_engine(storage)
    feeder = Feeder(feeding, secret, rng, next_n=0, submitted=[])
    thread = threading.Thread(target=feeder.run, name="feeder", daemon=True)
    worker = worker_process
    try:
        intake_id = registry.get_intake(INTAKE).id
        clock = [time.monotonic()]
        feeder.add(INITIAL)
        clock.append(time.monotonic())
        kills: list[Kill] = []
        for round_number, mode in enumerate(rng.sample(MODES, KILLS)):
            if round_number:
                feeder.add(BETWEEN_KILLS)
            started_at = allocator.position(Registry.name)
            worker.start()
            if round_number == 0:
                thread.start()
            if mode == "blind":
                time.sleep(rng.uniform(0.2, 1.5))
            else:
                deadline = time.monotonic() + PROGRESS_TIMEOUT
                while allocator.position(Registry.name) == started_at:
                    assert time.monotonic() < deadline, f"no progress\n{worker.tail()}"
                    assert worker.running, f"the worker exited\n{worker.tail()}"
                    time.sleep(0.005)
                time.sleep(rng.uniform(0, 0.03))
            _, end = followed_after(registry, Allocator.topics, started_at)
            worker.kill()  # fails unless the worker was still running
            kills.append(Kill(mode, started_at, allocator.position(Registry.name), end))

        feeder.stop.set()
        thread.join(timeout=60)
        assert not thread.is_alive()
        assert not feeder.errors, feeder.errors
        report = [(k.mode, k.started_at, k.position, k.end) for k in kills]
        print(f"kills (mode, started at, position after kill, end): {report}")
        assert len(worker.exit_codes) == KILLS
        assert all(code == -9 for code in worker.exit_codes), worker.exit_codes
        assert sum(k.mid_work for k in kills) >= MID_WORK_KILLS, report

        # Let the last run finish: the allocator and the view read everything, then SIGTERM.
        clock.append(time.monotonic())
        worker.start()
        view = AllocationView(engine)
        deadline = time.monotonic() + PROGRESS_TIMEOUT
        while (
            followed_after(registry, Allocator.topics, allocator.position(Registry.name))[0]
            or followed_after(allocator, AllocationView.topics, view.position(Allocator.name))[0]
        ):
            assert time.monotonic() < deadline, f"the worker did not finish\n{worker.tail()}"
            assert worker.running, f"the worker exited\n{worker.tail()}"
            time.sleep(0.1)
        worker.stop()
        assert worker.exit_codes[-1] == 0, f"SIGTERM did not stop it cleanly\n{worker.tail()}"
        assert Worker(storage, secret).settle() == (0, 0)  # nothing was left behind
        # Each restart resumed where the last commit left off, without a failed follower.
        assert "Traceback" not in worker.log_text(), worker.tail()

        clock.append(time.monotonic())
        stored = list(allocator.events.get(ledger_id(intake_id)))
        catch_up(registry, replay)
        same, detail = compare_ledgers(stored, replay.events.get(ledger_id(intake_id)))
        assert same, detail

        submitted, withdrawn = set(feeder.submitted), feeder.withdrawn
        assert (
            len(submitted)
            == len(feeder.submitted)
            == INITIAL + (KILLS - 1) * BETWEEN_KILLS + feeder.added
        )
        assert withdrawn, "the feeder withdrew no one"
        holders: dict[int, UUID] = {}
        decided: dict[UUID, list[str]] = {}
        released = reoffered = 0
        for e in stored:
            if isinstance(e, Ledger.PlaceGranted):
                assert e.slot not in holders, f"slot {e.slot} granted while held"
                assert 1 <= e.slot <= CAPACITY
                holders[e.slot] = e.case_id
            elif isinstance(e, Ledger.PlaceReleased):
                assert holders.pop(e.slot) == e.case_id
                assert e.case_id in withdrawn
                released += 1
            if isinstance(e, DECISIONS):
                made = decided.setdefault(e.case_id, [])
                made.append(type(e).__name__)
                if len(made) == 2:  # a second decision is only ever a re-offered place
                    assert made == ["Waitlisted", "PlaceGranted"], (e.case_id, made)
                    assert released > reoffered, "a place was re-offered that nobody released"
                    reoffered += 1
                assert len(made) <= 2, (e.case_id, made)
        assert set(decided) == submitted  # every submitted case was decided on ...
        assert all(len(made) == 1 or made[1] == "PlaceGranted" for made in decided.values())
        assert released > 0, "no place was withdrawn, so nothing was re-offered"
        assert reoffered == released  # ... and every freed place went to the next in line
        assert len(holders) == min(CAPACITY, len(submitted) - len(withdrawn))
        assert len(set(holders.values())) == len(holders)

        ledger = allocator.repository.get(ledger_id(intake_id))
        assert ledger.granted == len(holders)
        quota = {q.intake_id: q for q in AllocationQueries(engine).quotas()}[intake_id]
        assert quota.counts == dict(Counter(ledger.states.values()))
        assert quota.granted == len(holders)
        print(
            f"{len(submitted)} submitted, {len(withdrawn)} withdrawn, {len(stored)} ledger events,"
            f" {released} places released and re-offered, read model {quota.counts}"
        )
        clock.append(time.monotonic())
        phases = [round(b - a, 1) for a, b in itertools.pairwise(clock)]
        print(f"seconds: seeding, kills, last run, checks: {phases}")
    finally:
        feeder.stop.set()
        if thread.is_alive():
            thread.join(timeout=60)
        worker.stop(grace=0)
        engine.dispose()
        replay.close()
        allocator.close()
        feeding.close()
        registry.close()
