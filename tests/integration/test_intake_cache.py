"""A web process reads intakes through a short cache; the log still decides who got in on time."""

from __future__ import annotations

from collections import Counter

import pytest

from domain import errors
from domain.allocator import LATE, Allocator
from domain.ledger import Ledger, ledger_id
from domain.registry import Registry
from projections.persistence import application_env
from projections.views import migrate
from projections.worker import Worker
from tests.conftest import submit_person

SECRET = b"s" * 40


def registry_on(env, cache_seconds=None):
    if cache_seconds is not None:
        env = {**env, "CAREPATH_INTAKE_CACHE_SECONDS": cache_seconds}
    return Registry(env=application_env(env, "Registry", create_table=True), secret=SECRET)


@pytest.fixture
def two_processes(sqlite_env):
    """The registries of a web process (caching intakes for an hour) and of the operator's CLI."""
    Allocator(env=application_env(sqlite_env, "Allocator", create_table=True)).close()
    migrate(sqlite_env)
    cli = registry_on(sqlite_env)
    cli.define_intake(code="hcw", name="H", stream="", capacity=5, policy="first_come", actor="t")
    cli.open_intake("hcw", actor="t")
    web = registry_on(sqlite_env, cache_seconds="3600")
    yield web, cli
    web.close()
    cli.close()


def test_a_process_sees_its_own_close_at_once(two_processes):
    web, _ = two_processes
    submit_person(web, "hcw", 1)  # the intake is now cached
    web.close_intake("hcw", actor="t")
    with pytest.raises(errors.IntakeNotOpen):
        submit_person(web, "hcw", 2)


def test_without_the_cache_a_close_made_elsewhere_is_seen_at_once(sqlite_env, two_processes):
    _, cli = two_processes
    uncached = registry_on(sqlite_env, cache_seconds="0")
    try:
        submit_person(uncached, "hcw", 1)
        cli.close_intake("hcw", actor="t")
        with pytest.raises(errors.IntakeNotOpen):
            submit_person(uncached, "hcw", 2)
    finally:
        uncached.close()


def test_a_submission_let_through_by_a_stale_cache_is_explicitly_not_selected(
    sqlite_env, two_processes
):
    web, cli = two_processes
    on_time = submit_person(web, "hcw", 1)
    cli.close_intake("hcw", actor="t")
    late = submit_person(web, "hcw", 2)  # this process has not seen the close yet

    Worker(sqlite_env, SECRET).settle()

    allocator = Worker(sqlite_env, SECRET).allocator()
    try:
        events = list(allocator.events.get(ledger_id(cli.get_intake("hcw").id)))
    finally:
        allocator.close()
    decided = Counter(
        (type(e).__name__, e.case_id)
        for e in events
        if isinstance(e, Ledger.PlaceGranted | Ledger.NotSelected)
    )
    assert decided == Counter({("PlaceGranted", on_time): 1, ("NotSelected", late): 1})
    assert [e.reason for e in events if isinstance(e, Ledger.NotSelected)] == [LATE]
