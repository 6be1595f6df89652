"""The officers' read models on SQLite: the queue's filters, orders and keyset paging, the board,
the timeline, and a follower refusing to continue over a view rebuilt underneath it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa

from domain.allocator import Allocator
from domain.casework import Casework
from domain.registry import Registry
from domain.values import StaffView
from projections import officer as officer_module
from projections.allocation import AllocationQueries, AllocationView
from projections.casework import CaseworkView
from projections.officer import SORTS, BadCursor, OfficerQueries, QueueFilter
from projections.runner import catch_up
from projections.views import StaleBatch, make_engine, metadata, migrate
from tests.casework_fakes import Roster, staff_member
from tests.conftest import about_you, send_application, submit_person

POPO = {"PERSISTENCE_MODULE": "eventsourcing.popo"}
CASES = 23  # submitted in intake `test` (capacity 10): 10 hold places, 13 wait
DRAFTS = 3


@dataclass
class World:
    registry: Registry
    allocator: Allocator
    engine: Any
    queries: OfficerQueries
    casework: Casework
    officer: StaffView
    other: StaffView
    submitted: list[UUID] = field(default_factory=list)
    drafts: list[UUID] = field(default_factory=list)

    def settle(self) -> None:
        while (
            catch_up(self.registry, self.allocator)
            + catch_up(self.registry, CaseworkView(self.engine))
            + catch_up(self.allocator, AllocationView(self.engine))
        ):
            pass

    def version(self, case_id: UUID) -> int:
        return self.registry.get_case(case_id).version


@pytest.fixture
def world(registry: Registry, sqlite_env: dict[str, str]) -> Iterator[World]:
    """Intake `test` (10 places) with 23 submitted cases and 3 drafts, all projected."""
    migrate(sqlite_env)
    engine = make_engine(sqlite_env)
    allocator = Allocator(env=POPO)
    allocations = AllocationQueries(engine)
    me, other = staff_member(), staff_member()

    def holds_place(case_id: UUID) -> bool:
        found = allocations.of_case(case_id)
        return found is not None and found.state == "granted"

    w = World(
        registry=registry,
        allocator=allocator,
        engine=engine,
        queries=OfficerQueries(engine),
        casework=Casework(registry, Roster(me, other), holds_place),  # type: ignore[arg-type]
        officer=me,
        other=other,
    )
    w.submitted = [submit_person(registry, "test", n) for n in range(CASES)]
    w.drafts = [
        registry.register(
            "test", about_you(100 + n), language="en", idempotency_key=f"d{n}"
        ).case_id
        for n in range(DRAFTS)
    ]
    w.settle()
    yield w
    allocator.close()
    engine.dispose()


def all_pages(queries: OfficerQueries, filters: QueueFilter, limit: int) -> list[Any]:
    pages = [queries.queue(filters, limit=limit)]
    while pages[-1].next_cursor:
        pages.append(queries.queue(filters, cursor=pages[-1].next_cursor, limit=limit))
    return pages


def test_the_queue_shows_every_case_but_drafts_oldest_submission_first(world):
    page = world.queries.queue(QueueFilter(now=datetime.now(UTC)), limit=100)

    assert page.total == CASES
    assert [UUID(r.case_id) for r in page.rows] == world.submitted
    assert page.next_cursor is None
    assert page.previous_cursor is None
    first = page.rows[0]
    assert first.status == "submitted"
    assert first.allocation_state == "granted"
    assert first.slot == 1
    assert first.deadline is not None
    assert first.age_days == 0
    assert first.version == world.version(world.submitted[0])
    assert {r.allocation_state for r in page.rows[10:]} == {"waitlisted"}


@pytest.mark.parametrize("sort", SORTS)
def test_paging_forwards_then_backwards_gives_the_same_pages_and_loses_or_repeats_no_row(
    world, sort
):
    # Given the queue in one order, read in pages of 5
    filters = QueueFilter(now=datetime.now(UTC), sort=sort)
    whole = [r.case_id for r in world.queries.queue(filters, limit=100).rows]
    forwards = all_pages(world.queries, filters, limit=5)

    # When walking back from the last page by the previous-page cursors
    backwards = [forwards[-1]]
    while backwards[-1].previous_cursor:
        backwards.append(
            world.queries.queue(filters, cursor=backwards[-1].previous_cursor, limit=5)
        )

    # Then every row shows once, in order, and the pages back are the pages forth
    assert [r.case_id for p in forwards for r in p.rows] == whole
    assert len(whole) == len(set(whole)) == CASES
    assert [[r.case_id for r in p.rows] for p in reversed(backwards)] == [
        [r.case_id for r in p.rows] for p in forwards
    ]
    assert [len(p.rows) for p in forwards] == [5, 5, 5, 5, 3]
    assert forwards[0].previous_cursor is None
    assert forwards[-1].next_cursor is None
    assert all(p.total == CASES for p in forwards)


def test_each_order_sorts_by_its_key(world):
    now = datetime.now(UTC)
    rows = {s: world.queries.queue(QueueFilter(now=now, sort=s), limit=100).rows for s in SORTS}

    assert [r.submitted_at for r in rows["oldest"]] == sorted(
        r.submitted_at for r in rows["oldest"]
    )
    assert [r.case_id for r in rows["newest"]] == [r.case_id for r in reversed(rows["oldest"])]
    assert [r.reference for r in rows["reference"]] == sorted(r.reference for r in rows["oldest"])
    updated = [r.updated_at for r in rows["updated"]]
    assert updated == sorted(updated, reverse=True)


def test_filters_narrow_the_queue_by_status_place_assignee_and_reference(world):
    # Given two cases assigned, one of them accepted (it holds a place), and one withdrawn
    held, waiting, leaving = world.submitted[0], world.submitted[15], world.submitted[20]
    c = world.casework
    c.assign(
        held, world.officer.id, officer=world.officer, expected_version=4, idempotency_key="a1"
    )
    c.assign(
        waiting, world.other.id, officer=world.officer, expected_version=4, idempotency_key="a2"
    )
    send_application(world.registry, held)
    c.accept_for_processing(held, officer=world.officer, expected_version=6, idempotency_key="a3")
    world.registry.withdraw(leaving, expected_version=4, reason="x", idempotency_key="w1")
    world.settle()
    now = datetime.now(UTC)

    def ids(**filters: Any) -> set[UUID]:
        page = world.queries.queue(QueueFilter(now=now, **filters), limit=100)
        assert page.total == len(page.rows)
        return {UUID(r.case_id) for r in page.rows}

    assert ids(status="accepted") == {held}
    assert ids(status="withdrawn") == {leaving}
    assert ids(status="draft") == set(world.drafts)
    assert ids(allocation_state="accepted") == {held}
    assert len(ids(allocation_state="granted")) == 9  # one of the ten places is kept now
    assert ids(assigned=world.other.id.hex) == {waiting}
    assert ids(assigned="none") == set(world.submitted) - {held, waiting}
    assert ids(intake_id=uuid4()) == set()
    assert ids(intake_id=world.registry.get_intake("test").id) == set(world.submitted)
    reference = world.registry.get_case(waiting).reference
    assert ids(reference=reference.lower().replace("-", "")) == {waiting}
    assert waiting in ids(reference=reference[:6])
    # And the row carries what the officers' bulk action sends back
    row = next(
        r
        for r in world.queries.queue(QueueFilter(now=now), limit=100).rows
        if r.case_id == held.hex
    )
    assert (row.assigned_to, row.status, row.version) == (world.officer.id.hex, "accepted", 7)


def test_age_buckets_split_at_31_and_61_days_since_submission(world):
    # Given a moment exactly 31 days after the 8th case was submitted
    rows = world.queries.queue(QueueFilter(now=datetime.now(UTC)), limit=100).rows
    now = rows[7].submitted_at + timedelta(days=31)

    def refs(age: str, at: datetime = now) -> list[str]:
        return [
            r.case_id for r in world.queries.queue(QueueFilter(now=at, age=age), limit=100).rows
        ]

    # Then the first 8 are 31 days old, the others 30 days
    assert refs("31-60") == [r.case_id for r in rows[:8]]
    assert refs("0-30") == [r.case_id for r in rows[8:]]
    assert refs("61+") == []
    assert len(refs("61+", now + timedelta(days=30))) == 8
    first = world.queries.queue(QueueFilter(now=now, age="31-60"), limit=1).rows[0]
    assert first.age_days == 31


def test_the_export_streams_every_filtered_row_in_order_across_chunks(world, monkeypatch):
    monkeypatch.setattr(officer_module, "ITER_CHUNK", 4)
    filters = QueueFilter(now=datetime.now(UTC), sort="reference")

    streamed = [r.case_id for r in world.queries.iter_queue(filters)]

    assert streamed == [r.case_id for r in world.queries.queue(filters, limit=100).rows]
    assert len(streamed) == CASES


def test_a_cursor_of_another_order_or_a_damaged_one_is_refused(world):
    now = datetime.now(UTC)
    page = world.queries.queue(QueueFilter(now=now), limit=5)

    with pytest.raises(BadCursor):
        world.queries.queue(QueueFilter(now=now, sort="reference"), cursor=page.next_cursor)
    with pytest.raises(BadCursor):
        world.queries.queue(QueueFilter(now=now), cursor="not-a-cursor")


def test_the_board_counts_cases_and_places_per_pool_with_totals(world):
    c, first = world.casework, world.submitted[0]
    send_application(world.registry, first)
    c.accept_for_processing(first, officer=world.officer, expected_version=5, idempotency_key="k1")
    c.approve(first, "fine", officer=world.officer, expected_version=6, idempotency_key="k2")
    world.registry.withdraw(
        world.submitted[1], expected_version=4, reason="x", idempotency_key="k3"
    )
    world.settle()

    board = world.queries.board(world.registry.get_intake("test").id)

    assert [p.pool for p in board.pools] == ["general"]
    general = board.pools[0]
    assert general.capacity == board.capacity == 10
    assert general.cases["registered"] == CASES + DRAFTS
    assert general.cases["submitted"] == CASES
    assert (general.cases["accepted"], general.cases["approved"], general.decided) == (1, 1, 1)
    assert general.cases["withdrawn"] == 1
    assert general.places["accepted"] == 1
    assert general.places["granted"] == 9
    assert general.places["withdrawn"] == 1
    assert general.places["waitlisted"] == CASES - 11
    assert general.held == 10
    assert general.places_left == 0
    assert board.totals.counts == general.counts
    assert general.value("registered") == CASES + DRAFTS


def test_the_series_counts_each_minute_and_the_places_held_at_its_end(world):
    series = world.queries.series(world.registry.get_intake("test").id)

    assert sum(m.registered for m in series) == CASES + DRAFTS
    assert sum(m.submitted for m in series) == CASES
    assert series[-1].held == 10
    assert all(a.minute < b.minute for a, b in itertools.pairwise(series))


def test_the_timeline_shows_the_applicants_steps_and_the_allocators_decisions_in_order(world):
    case_id = world.submitted[10]  # first on the waitlist, invited when a holder withdraws
    world.registry.withdraw(world.submitted[0], expected_version=4, reason="x", idempotency_key="w")
    world.settle()  # the allocator invites the first waiting before the officer writes
    world.casework.request_information(
        case_id,
        "Send your passport",
        officer=world.officer,
        expected_version=4,
        idempotency_key="r",
    )
    world.registry.provide_information(
        case_id, "r1", "attached", expected_version=5, idempotency_key="p"
    )
    world.settle()

    entries = world.queries.timeline(case_id)

    assert [e.what for e in entries] == [
        "registered",
        "step_saved",
        "step_saved",
        "submitted",
        "waitlisted",
        "granted",
        "invited",
        "information_requested",
        "information_provided",
    ]
    assert entries[1].details == {"step": "contact"}
    assert entries[1].actor == "applicant"
    assert entries[4].details == {"rank": 1, "pool": "general"}
    assert entries[4].actor == "allocator"
    assert entries[5].details == {"slot": 1, "pool": "general"}
    assert entries[7].actor == f"staff:{world.officer.id.hex}"
    assert entries[7].details == {"request_id": "r1", "message": "Send your passport"}
    assert entries[8].details == {"request_id": "r1"}  # the applicant's answer stays out
    positions = world.queries.positions()
    assert set(positions) == {"casework_view", "allocation_view"}


def test_read_models_hold_no_names_passport_numbers_answers_or_email(world):
    world.casework.request_information(
        world.submitted[3], "Which?", officer=world.officer, expected_version=4, idempotency_key="q"
    )
    world.registry.provide_information(
        world.submitted[3], "r1", "my secret answer", expected_version=5, idempotency_key="a"
    )
    world.settle()
    text = []
    with world.engine.connect() as connection:
        for table in metadata.sorted_tables:
            text.extend(str(tuple(row)) for row in connection.execute(sa.select(table)))
    dump = "\n".join(text)

    assert "P00000003" not in dump
    assert "Santos" not in dump
    assert "Maria" not in dump
    assert "example.org" not in dump
    assert "my secret answer" not in dump
    assert "Which?" in dump  # what the officer wrote is there


def test_a_follower_refuses_to_continue_over_a_view_rebuilt_underneath_it(world):
    # Given a follower that has read its position, and the view moved on by someone else
    follower = CaseworkView(world.engine)
    follower.position("Registry")
    world.registry.withdraw(world.submitted[5], expected_version=4, reason="x", idempotency_key="z")
    catch_up(world.registry, CaseworkView(world.engine))
    items = [
        (
            world.registry.mapper.to_domain_event(n),
            __import__("eventsourcing.persistence", fromlist=["Tracking"]).Tracking(
                "Registry", n.id
            ),
        )
        for n in world.registry.recorder.select_notifications(
            start=0, limit=1000, topics=CaseworkView.topics, inclusive_of_start=False
        )[-1:]
    ]

    # Then its next batch is refused whole
    with pytest.raises(StaleBatch):
        follower.process_batch(items)


def test_the_board_moves_a_pool_s_unused_places_to_general_with_the_ledger(world):
    registry = world.registry
    registry.define_intake(
        code="moves",
        name="Moves",
        stream="",
        capacity=4,
        policy="first_come",
        pools={"braille": 2},
        actor="t",
    )
    registry.open_intake("moves", actor="t")
    for n in range(200, 204):
        submit_person(registry, "moves", n)
    submit_person(registry, "moves", 210, pool="braille")
    world.settle()
    intake_id = registry.get_intake("moves").id
    before = {p.pool: p for p in world.queries.board(intake_id).pools}
    assert (before["general"].capacity, before["braille"].capacity) == (2, 2)
    assert before["braille"].places_left == 1

    registry.close_intake("moves", actor="t")  # braille's free place moves to general
    world.settle()

    after = {p.pool: p for p in world.queries.board(intake_id).pools}
    assert (after["general"].capacity, after["braille"].capacity) == (3, 1)
    assert after["general"].held == 3
    assert after["braille"].held == 1
    assert after["general"].places_left == after["braille"].places_left == 0
