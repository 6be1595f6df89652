"""SIGKILL of a `carepath worker` while its read models project a backlog, then a restart, applies
every event exactly once: the read models equal a fresh rebuild from the logs (PostgreSQL)."""

from __future__ import annotations

import random
import secrets
import time
from pathlib import Path

import pytest

from domain.allocator import Allocator
from domain.registry import Registry
from projections.casework import CaseworkView
from projections.persistence import application_env
from projections.rebuild import status
from projections.views import make_engine
from projections.worker import Worker
from tests.integration.daemons import Daemon
from tests.integration.seed import seed_submitted
from tests.integration.servers import carepath_env, run_carepath
from tests.integration.test_rebuild import assert_same, canonical, drop_every_read_model

pytestmark = pytest.mark.slow

INTAKE = "kill-views"
CAPACITY = 400
BACKLOG = 4_000  # cases queued before each start: 16,000 Case events for the casework view
KILLS = 4
TIMEOUT = 60.0


def test_a_worker_killed_while_projecting_applies_every_event_exactly_once_after_restart(
    postgres_db: dict[str, str], tmp_path: Path
) -> None:
    seed = secrets.randbits(32)
    print(f"seed={seed}")
    rng = random.Random(seed)
    env = carepath_env(postgres_db)
    secret = postgres_db["CAREPATH_SECRET"].encode()
    run_carepath(env, "db", "init")
    run_carepath(
        env, "intake", "create", "--code", INTAKE, "--name", "Kill", "--capacity", str(CAPACITY)
    )
    run_carepath(env, "intake", "open", INTAKE)
    registry = Registry(
        env=application_env(postgres_db, Registry.name, create_table=False), secret=secret
    )
    allocator = Allocator(env=application_env(postgres_db, Allocator.name, create_table=False))
    engine = make_engine(postgres_db)
    worker = Daemon.worker(env, log_dir=tmp_path)
    view = CaseworkView(engine)
    sources = {"Registry": registry, "Allocator": allocator}
    next_n, mid_batch = 0, 0
    try:
        for _ in range(KILLS):
            # Given a backlog of registrations and some withdrawals queued for the views
            ids = seed_submitted(registry, secret, INTAKE, BACKLOG, start=next_n, batch=500)
            next_n += BACKLOG
            for case_id in rng.sample(ids, 5):
                registry.withdraw(
                    case_id, expected_version=4, reason="x", idempotency_key=f"w-{case_id}"
                )
            before = view.position(Registry.name)
            # When the worker is killed after it has committed some of it
            worker.start()
            deadline = time.monotonic() + TIMEOUT
            while view.position(Registry.name) == before:
                assert time.monotonic() < deadline, worker.tail()
                assert worker.running, worker.tail()
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.2))
            worker.kill()
            lag = {s.name: s.lag for s in status(engine, sources)}
            mid_batch += lag["casework_view"] > 0
        assert worker.exit_codes == [-9] * KILLS
        assert mid_batch >= 2, "the kills did not land while the casework view had work left"

        # And restarted until it has read everything
        worker.start()
        deadline = time.monotonic() + TIMEOUT
        while any(s.lag for s in status(engine, sources)) or Worker(
            postgres_db, secret
        ).settle() != (0, 0):
            assert time.monotonic() < deadline, worker.tail()
            time.sleep(0.1)
        worker.stop()
        assert worker.exit_codes[-1] == 0, worker.tail()
        assert "Traceback" not in worker.log_text(), worker.tail()
        live = canonical(engine)

        # Then a fresh rebuild from the logs gives the same tables: nothing applied twice or lost
        drop_every_read_model(engine)
        Worker(postgres_db, secret).settle()
        rebuilt = canonical(engine)
        assert_same(rebuilt, live)
        counts = {(r[1], r[2]): r[3] for r in live["case_counts"]}
        assert counts[("general", "registered")] == KILLS * BACKLOG
        assert counts[("general", "withdrawn")] == KILLS * 5
        places = {r[2]: r[3] for r in live["allocation_counts"]}
        assert places["granted"] == CAPACITY
        assert len(live["case_timeline"]) == KILLS * (BACKLOG * 4 + 5)
    finally:
        worker.stop(grace=0)
        engine.dispose()
        allocator.close()
        registry.close()
