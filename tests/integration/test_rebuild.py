"""Every read model is a pure function of its log: dropping the tables and rebuilding them from the
logs (by `carepath projections rebuild`, or by replaying from position 0) gives tables identical to
the live ones, row for row, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa

from domain.allocator import Allocator
from domain.casework import Casework
from domain.registry import Registry
from projections.allocation import HOLDING, AllocationQueries
from projections.persistence import application_env
from projections.rebuild import VIEWS, rebuild, status
from projections.views import make_engine, metadata, migrate
from projections.worker import Worker
from tests.casework_fakes import Roster, staff_member
from tests.conftest import about_you, send_application, submit_person
from tests.integration.servers import carepath_command, carepath_env, run_carepath

CODE = "rebuild"
OPERATOR = "operator:test"


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request: pytest.FixtureRequest) -> dict[str, str]:
    return dict(
        request.getfixturevalue("postgres_db" if request.param == "postgres" else "sqlite_env")
    )


@dataclass
class Run:
    storage: dict[str, str]
    secret: bytes
    registry: Registry
    engine: Any

    def settle(self) -> None:
        Worker(self.storage, self.secret).settle()

    def version(self, case_id: UUID) -> int:
        return self.registry.get_case(case_id).version


@pytest.fixture
def run(storage: dict[str, str]) -> Iterator[Run]:
    secret = storage["CAREPATH_SECRET"].encode()
    env = application_env(storage, Registry.name, create_table=True)
    env["GROUP_COMMIT"] = "n"
    registry = Registry(env=env, secret=secret)
    Allocator(env=application_env(storage, Allocator.name, create_table=True)).close()
    migrate(storage)
    engine = make_engine(storage)
    yield Run(storage, secret, registry, engine)
    engine.dispose()
    registry.close()


def a_day_of_casework(run: Run) -> None:
    """Registrations (two pools, drafts), withdrawals of a place holder and of a waiting case
    (re-offers), officers' decisions of every kind, and offers expiring (more re-offers)."""
    registry = run.registry
    registry.define_intake(
        code=CODE,
        name="Rebuild test",
        stream="",
        capacity=6,
        policy="first_come",
        document_deadline_days=10,
        pools={"alt": 2},
        actor=OPERATOR,
    )
    registry.open_intake(CODE, actor=OPERATOR)
    general = [submit_person(registry, CODE, n) for n in range(10)]
    alt = [submit_person(registry, CODE, 100 + n, pool="alt") for n in range(4)]
    for n in range(2):
        registry.register(CODE, about_you(200 + n), language="en", idempotency_key=f"draft-{n}")
    run.settle()

    registry.withdraw(general[0], expected_version=4, reason="x", idempotency_key="w0")
    registry.withdraw(general[8], expected_version=4, reason="x", idempotency_key="w8")
    registry.withdraw(alt[3], expected_version=4, reason="x", idempotency_key="w-alt")
    run.settle()

    me, other = staff_member(), staff_member()
    allocations = AllocationQueries(run.engine)

    def holds_place(case_id: UUID) -> bool:
        found = allocations.of_case(case_id)
        return found is not None and found.state in HOLDING

    work = Casework(registry, Roster(me, other), holds_place)  # type: ignore[arg-type]

    def act(name: str, case_id: UUID, *args: Any) -> None:
        if name in {"accept_for_processing", "return_incomplete"}:
            send_application(registry, case_id)  # the completeness check follows stage two
        getattr(work, name)(
            case_id,
            *args,
            officer=me,
            expected_version=run.version(case_id),
            idempotency_key=f"{name}-{case_id.hex}-{run.version(case_id)}",
        )

    act("assign", general[1], me.id)
    act("request_information", general[1], "Send the letter from your employer")
    registry.provide_information(
        general[1], "r1", "attached", expected_version=run.version(general[1]), idempotency_key="p1"
    )
    act("accept_for_processing", general[1])
    act("approve", general[1], "all in order")
    act("assign", general[2], other.id)
    act("accept_for_processing", general[2])
    act("refuse", general[2], ["inadmissible"], "")
    act("return_incomplete", general[3], ["documents_missing"], "no passport copy")
    act("accept_for_processing", alt[0])
    act("assign", alt[1], me.id)
    act("assign", alt[1], None)
    run.settle()

    # Offers still outstanding expire: their places go to the next waiting.
    registry.check_deadlines(CODE, datetime.now(UTC) + timedelta(days=11), actor=OPERATOR)
    run.settle()


def canonical(engine: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every read-model table, its rows sorted and its values normalised."""

    def value(v: Any) -> Any:
        if isinstance(v, datetime):
            return v.astimezone(UTC).isoformat()
        if isinstance(v, dict | list):
            return json.dumps(v, sort_keys=True)
        if isinstance(v, bool):
            return int(v)
        return v

    dump = {}
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            rows = connection.execute(sa.select(table)).all()
            dump[table.name] = sorted((tuple(value(v) for v in row) for row in rows), key=repr)
    return dump


def drop_every_read_model(engine: Any) -> None:
    with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())


def assert_same(rebuilt: dict[str, Any], live: dict[str, Any]) -> None:
    assert set(rebuilt) == set(live)
    for name in live:
        assert len(rebuilt[name]) == len(live[name]), name
        for got, want in zip(rebuilt[name], live[name], strict=True):
            assert got == want, name


def test_rebuilding_every_read_model_from_the_logs_gives_the_live_tables_row_for_row(run):
    # Given a day of registrations, withdrawals, re-offers, officers' decisions and expiries
    a_day_of_casework(run)
    live = canonical(run.engine)
    assert len(live["cases"]) == 16
    assert len(live["case_timeline"]) > 60
    assert {r[3] for r in live["allocation_timeline"]} >= {
        "granted",
        "invited",
        "waitlisted",
        "left_waitlist",
        "released",
        "taken_up",
    }
    assert {"accepted", "withdrawn", "expired", "returned_incomplete"} <= {
        row[2] for row in live["allocation_counts"]
    }
    assert {r[3] for r in live["case_timeline"]} >= {"approved", "refused", "returned"}
    allocator = Allocator(env=application_env(run.storage, Allocator.name, create_table=False))
    try:
        # When each view is rebuilt into scratch tables and swapped in
        done = [
            rebuild(run.engine, run.registry if spec.source == "Registry" else allocator, name)
            for name, spec in VIEWS.items()
        ]
        # Then nothing changed, and no scratch table is left behind
        assert_same(canonical(run.engine), live)
        assert all(d.events > 0 for d in done)
        assert not [t for t in sa.inspect(run.engine).get_table_names() if "__rebuild" in t]

        # And when every read model is dropped and the worker replays the logs from position 0
        drop_every_read_model(run.engine)
        assert canonical(run.engine)["cases"] == []
        run.settle()
        # Then it builds the same tables again
        assert_same(canonical(run.engine), live)
    finally:
        allocator.close()


def test_a_rebuild_while_the_worker_follows_ends_with_the_tables_a_replay_gives(run):
    # Given a worker following the logs, and cases arriving while a rebuild runs
    a_day_of_casework(run)
    stop = threading.Event()
    worker = threading.Thread(
        target=Worker(run.storage, run.secret).run, args=(stop,), name="worker", daemon=True
    )
    worker.start()
    allocator = Allocator(env=application_env(run.storage, Allocator.name, create_table=False))
    try:
        for n in range(20):
            submit_person(run.registry, CODE, 300 + n)
        for name, spec in VIEWS.items():
            rebuild(run.engine, run.registry if spec.source == "Registry" else allocator, name)
        for n in range(20, 30):
            submit_person(run.registry, CODE, 300 + n)

        # When the worker has caught up again
        deadline = time.monotonic() + 30
        while _lagging(run, allocator):
            assert time.monotonic() < deadline, "the worker did not catch up"
            time.sleep(0.2)
        stop.set()
        worker.join(timeout=30)
        assert not worker.is_alive()
        assert Worker(run.storage, run.secret).settle() == (0, 0)
        live = canonical(run.engine)

        # Then the tables are those a replay from position 0 builds
        drop_every_read_model(run.engine)
        run.settle()
        assert_same(canonical(run.engine), live)
        assert len(live["cases"]) == 46
    finally:
        stop.set()
        worker.join(timeout=30)
        allocator.close()


def _lagging(run: Run, allocator: Allocator) -> bool:

    return any(
        s.lag for s in status(run.engine, {"Registry": run.registry, "Allocator": allocator})
    )


SUMMARY = re.compile(r"^rebuilt (\w+): (\d+) events in [\d.]+ s \(\d+ events/s\)$", re.M)


def test_the_rebuild_command_rebuilds_every_view_and_reports_its_throughput(sqlite_env):
    env = carepath_env(sqlite_env)
    run_carepath(env, "db", "init")
    run_carepath(env, "intake", "create", "--code", CODE, "--name", "CLI", "--capacity", "3")
    run_carepath(env, "intake", "open", CODE)
    secret = sqlite_env["CAREPATH_SECRET"].encode()
    registry = Registry(
        env=application_env(sqlite_env, Registry.name, create_table=False), secret=secret
    )
    try:
        for n in range(5):
            submit_person(registry, CODE, n)
    finally:
        registry.close()
    Worker(sqlite_env, secret).settle()
    engine = make_engine(sqlite_env)
    try:
        live = canonical(engine)

        done = run_carepath(env, "projections", "rebuild")

        assert dict(SUMMARY.findall(done.stdout)) == {
            "casework_view": "20",  # 5 cases: registered, two steps, submitted
            "allocation_view": "9",  # the ledger started, 3 granted and invited, 2 waitlisted
        }
        assert "rebuilding casework_view" in done.stderr
        assert_same(canonical(engine), live)
    finally:
        engine.dispose()

    lines = run_carepath(env, "projections", "status").stdout.splitlines()
    assert re.match(r"casework_view\s+Registry\s+\d+\s+\d+\s+0$", lines[1])
    assert re.match(r"allocation_view\s+Allocator\s+9\s+9\s+0$", lines[2])

    one = run_carepath(env, "projections", "rebuild", "allocation_view").stdout
    assert SUMMARY.findall(one) == [("allocation_view", "9")]
    wrong = subprocess.run(
        carepath_command("projections", "rebuild", "cases"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert wrong.returncode != 0
    assert wrong.stderr.strip() == (
        "Error: no read model is called 'cases': choose one of casework_view, allocation_view"
    )
