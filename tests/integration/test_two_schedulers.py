"""Two scheduler processes against one database: each job's effect happens once, on SQLite and on
PostgreSQL, with real `carepath scheduler` and `carepath worker` processes.

Two schedulers start at once (jobs every 0.5 s) beside a worker, which decides on registrations
and makes the lottery's draw. Then intakes are defined through the CLI, each with a window that
opens a couple of seconds after its definition and closes a few seconds later: a first-come one, a
lottery, and a first-come one without a closing time that only the "close when full" job can
close. Registrations are submitted through the Registry while each window is open. Then the
Registry's log must hold exactly one Opened and one Closed event per intake (recorded by the
scheduler), the lottery's Ledger exactly one draw (its value supplied through the CLI: tests
have no beacon), which an audit recomputes from the log, and
only one scheduler may have been active.

In the second scenario the active scheduler is SIGKILLed once its intake has opened; the standby
must take over: it closes that intake, and opens and closes an intake defined only after the kill,
each exactly once.

The windows are measured from each definition, with the schedulers already running, so a slow
machine only makes the test slower; no assertion is about time.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from domain.allocator import Allocator
from domain.audit import recompute_draw
from domain.errors import IntakeNotOpen
from domain.intake import Intake
from domain.ledger import Ledger, ledger_id
from domain.registry import Registry
from domain.values import IntakeStatus
from projections.persistence import application_env
from scheduler.jobs import ACTOR
from tests.conftest import CONTACT, ELIGIBILITY, about_you
from tests.integration.daemons import Daemon
from tests.integration.servers import carepath_env, run_carepath

pytestmark = pytest.mark.slow

ACTIVE = "scheduler active"
STANDBY = "another scheduler holds the lock"
TIMEOUT = 45.0  # seconds the test waits for any one thing the processes should do
OPENS_IN = 2.0  # seconds from an intake's definition to its opening
WINDOW = 5.0  # seconds it stays open: time enough to submit a few registrations


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request: pytest.FixtureRequest) -> dict[str, str]:
    return dict(
        request.getfixturevalue("postgres_db" if request.param == "postgres" else "sqlite_env")
    )


class Site:
    """One database with its processes: two schedulers and a worker, and a Registry to look in."""

    def __init__(self, storage: dict[str, str], log_dir: Path) -> None:
        self.storage = storage
        self.env = carepath_env(storage)
        self.secret = storage["CAREPATH_SECRET"].encode()
        run_carepath(self.env, "db", "init")
        self.registry = Registry(
            env=application_env(storage, "Registry", create_table=False), secret=self.secret
        )
        self.allocator = Allocator(env=application_env(storage, "Allocator", create_table=False))
        self.schedulers = [
            Daemon.scheduler(self.env, log_dir=log_dir, name=f"scheduler-{n}") for n in (1, 2)
        ]
        self.worker = Daemon.worker(self.env, log_dir=log_dir)
        self.registered = 0

    def start(self) -> None:
        self.worker.start()
        for scheduler in self.schedulers:
            scheduler.start()

    def close(self) -> None:
        for process in (*self.schedulers, self.worker):
            process.stop(grace=0)
        self.allocator.close()
        self.registry.close()

    def define(
        self, code: str, *, opens_in: float, closes_in: float | None, **options: Any
    ) -> None:
        now = datetime.now(UTC)
        args = ["--code", code, "--name", f"Intake {code}", "--opens-at"]
        args.append((now + timedelta(seconds=opens_in)).isoformat())
        if closes_in is not None:
            args += ["--closes-at", (now + timedelta(seconds=closes_in)).isoformat()]
        for option, value in options.items():
            args += [f"--{option.replace('_', '-')}", str(value)]
        run_carepath(self.env, "intake", "create", *args)

    def one_active(self) -> bool:
        return any(ACTIVE in s.log_text() for s in self.schedulers)

    def status(self, code: str) -> IntakeStatus:
        return self.registry.get_intake(code).status

    def wait_until(self, what: str, condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not condition():
            for process in (*self.schedulers, self.worker):
                exited = process.process is not None and process.process.poll() is not None
                assert not exited, f"{process.argv} exited\n{process.tail()}"
            if time.monotonic() > deadline:
                logs = "\n".join(p.tail(2000) for p in (*self.schedulers, self.worker))
                raise AssertionError(f"timed out waiting until {what}\n{logs}")
            time.sleep(0.1)

    def wait_for_status(self, code: str, status: IntakeStatus) -> None:
        self.wait_until(f"{code} is {status}", lambda: self.status(code) is status)

    def submit(self, code: str, people: int) -> list[UUID]:
        """Register and submit `people` applicants through the Registry (the window must be open)."""
        ids = []
        for _ in range(people):
            self.registered += 1
            n = self.registered
            try:
                done = self.registry.register(
                    code, about_you(n), language="en", idempotency_key=f"r-{code}-{n}"
                )
            except IntakeNotOpen:
                raise AssertionError(
                    f"{code} closed after {len(ids)} of {people} registrations: too slow a machine"
                ) from None
            for version, (step, answers) in enumerate(
                (("contact", CONTACT), ("eligibility", ELIGIBILITY)), start=1
            ):
                self.registry.save_step(
                    done.case_id,
                    step,
                    answers,
                    expected_version=version,
                    language="en",
                    idempotency_key=f"{step}-{code}-{n}",
                )
            self.registry.submit(
                done.case_id, expected_version=3, language="en", idempotency_key=f"s-{code}-{n}"
            )
            ids.append(done.case_id)
        return ids

    def ledger_events(self, code: str) -> list[Any]:
        return list(self.allocator.events.get(ledger_id(self.registry.get_intake(code).id)))

    def draws(self, code: str) -> int:
        return sum(isinstance(e, Ledger.DrawMade) for e in self.ledger_events(code))

    def intake_events(self, code: str) -> tuple[list[Any], list[Any]]:
        """The Opened and the Closed events of the intake in the Registry's log."""
        events = list(self.registry.events.get(self.registry.get_intake(code).id))
        opened = [e for e in events if isinstance(e, Intake.Opened)]
        closed = [e for e in events if isinstance(e, Intake.Closed)]
        return opened, closed

    def assert_opened_and_closed_once(self, code: str) -> None:
        opened, closed = self.intake_events(code)
        assert len(opened) == 1, f"{code} opened {len(opened)} times"
        assert len(closed) == 1, f"{code} closed {len(closed)} times"
        assert opened[0].actor == closed[0].actor == ACTOR
        assert opened[0].timestamp < closed[0].timestamp

    def assert_draw_audits(self, code: str, entries: int) -> None:
        events = [
            self.registry.mapper.to_domain_event(n)
            for n in self.registry.recorder.select_notifications(
                start=0, limit=100_000, topics=Allocator.topics, inclusive_of_start=False
            )
        ]
        audit = recompute_draw(events, self.ledger_events(code), self.registry.get_intake(code).id)
        assert audit.ok, audit.checks
        assert audit.entries == entries

    def settle_and_stop(self) -> list[str]:
        """Give a duplicate the chance to happen (a few job intervals), then stop every process.

        Returns the schedulers' logs from before the stop (a standby takes over when the active
        scheduler stops, which is no concern of the tests).
        """
        time.sleep(2)
        logs = [s.log_text() for s in self.schedulers]
        for process in (*self.schedulers, self.worker):
            if process.running:
                process.stop()
                assert process.exit_codes[-1] == 0, f"{process.argv}\n{process.tail()}"
        return logs


@pytest.fixture
def site(storage: dict[str, str], tmp_path: Path) -> Iterator[Site]:
    built = Site(storage, tmp_path)
    yield built
    built.close()  # kills whatever is left, whatever happened


def test_two_schedulers_open_close_and_draw_each_intake_once(site: Site) -> None:
    site.start()  # both at once; then each intake opens a few seconds after it is defined
    site.wait_until("a scheduler is active", site.one_active)
    site.define("fc", opens_in=OPENS_IN, closes_in=OPENS_IN + WINDOW, capacity=3)
    site.wait_for_status("fc", IntakeStatus.OPEN)
    site.submit("fc", 5)
    site.define("lot", opens_in=OPENS_IN, closes_in=OPENS_IN + WINDOW, capacity=3, policy="lottery")
    site.wait_for_status("lot", IntakeStatus.OPEN)
    site.submit("lot", 6)
    # Two places and a waitlist of two, and no closing time: only "close when full" closes it.
    site.define("full", opens_in=OPENS_IN, closes_in=None, capacity=2, waitlist_length=2)
    site.wait_for_status("full", IntakeStatus.OPEN)
    site.submit("full", 4)

    for code in ("fc", "lot", "full"):
        site.wait_for_status(code, IntakeStatus.CLOSED)
    # No beacon in tests: the operator supplies the value (scheduler.jobs.draw_due_lotteries
    # fetches a beacon's round; tests/unit/test_draw_job.py runs it against a local beacon).
    run_carepath(site.env, "intake", "draw", "lot", "--operator-value", "ab" * 32)
    site.wait_until("the lottery is drawn", lambda: site.draws("lot") > 0)
    logs = site.settle_and_stop()

    for code in ("fc", "lot", "full"):
        site.assert_opened_and_closed_once(code)
    assert site.draws("lot") == 1
    site.assert_draw_audits("lot", entries=6)
    decided = Counter(type(e).__name__ for e in site.ledger_events("full"))
    assert (decided["PlaceGranted"], decided["Waitlisted"]) == (2, 2)
    # The lock let one scheduler act; the other waited as a standby the whole time.
    assert sorted(ACTIVE in log for log in logs) == [False, True], logs
    assert sum(STANDBY in log for log in logs) == 1, logs


def test_standby_scheduler_takes_over_when_the_active_one_is_killed(site: Site) -> None:
    site.start()
    site.wait_until("a scheduler is active", site.one_active)
    (active,) = (s for s in site.schedulers if ACTIVE in s.log_text())
    (standby,) = (s for s in site.schedulers if s is not active)
    site.define("early", opens_in=OPENS_IN, closes_in=OPENS_IN + 2 * WINDOW, capacity=3)
    site.wait_for_status("early", IntakeStatus.OPEN)
    assert ACTIVE not in standby.log_text()

    active.kill()  # SIGKILL mid-way: fails unless it was still running
    assert site.status("early") is IntakeStatus.OPEN  # so closing it is left to the standby
    standby.wait_for_log(ACTIVE, timeout=TIMEOUT)
    # Defined after the kill: only the standby can open and close it.
    site.define(
        "late", opens_in=OPENS_IN, closes_in=OPENS_IN + WINDOW, capacity=2, policy="lottery"
    )
    site.wait_for_status("late", IntakeStatus.OPEN)
    site.submit("late", 3)
    for code in ("early", "late"):
        site.wait_for_status(code, IntakeStatus.CLOSED)
    run_carepath(site.env, "intake", "draw", "late", "--operator-value", "cd" * 32)
    site.wait_until("the lottery is drawn", lambda: site.draws("late") > 0)
    site.settle_and_stop()

    assert active.exit_codes == [-9]
    for code in ("early", "late"):
        site.assert_opened_and_closed_once(code)
    assert site.draws("late") == 1
    site.assert_draw_audits("late", entries=3)
