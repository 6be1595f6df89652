"""Allocation decisions, the lottery's published algorithm, its fairness check and its audit."""

from __future__ import annotations

import hashlib
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from domain.allocator import Allocator
from domain.audit import compare_ledgers, recompute_draw
from domain.intake import Intake
from domain.ledger import Ledger, ledger_id
from domain.policies import (
    chi_square_survival,
    combined_seed,
    commitment,
    draw_seed,
    entries_digest,
    fairness,
    lottery_ranking,
    rank_key,
    rank_sum,
)
from domain.registry import Registry
from projections.runner import catch_up
from tests.conftest import OPERATOR_VALUE, SECRET, about_you, close_and_draw, submit_person

POPO = {"PERSISTENCE_MODULE": "eventsourcing.popo"}


def registry_log(registry):
    return [
        registry.mapper.to_domain_event(n)
        for n in registry.recorder.select_notifications(
            start=0, limit=1000, topics=Allocator.topics, inclusive_of_start=False
        )
    ]


@pytest.fixture
def world():
    registry = Registry(env=POPO, secret=SECRET)
    allocator = Allocator(env=POPO)
    yield registry, allocator
    allocator.close()
    registry.close()


def enter(registry, code, n, pool="general"):
    return submit_person(registry, code, n, pool)


def intake(registry, code, **options):
    definition = {
        "name": code,
        "stream": "",
        "capacity": 3,
        "policy": "first_come",
        "actor": "t",
        **options,
    }
    registry.define_intake(code=code, **definition)
    registry.open_intake(code, actor="t")
    return Intake.create_id(code)


def ledger_events(allocator, intake_id):
    return list(allocator.events.get(ledger_id(intake_id)))


def test_first_come_grants_in_submission_order_then_waitlists_then_refuses(world):
    registry, allocator = world
    intake_id = intake(registry, "fc", capacity=2, waitlist_length=2)
    ids = [enter(registry, "fc", n) for n in range(6)]
    catch_up(registry, allocator)
    ledger = allocator.ledger_of(intake_id)
    assert [ledger.states[c] for c in ids] == [
        "granted",
        "granted",
        "waitlisted",
        "waitlisted",
        "not_selected",
        "not_selected",
    ]
    assert ledger.slot_of == {ids[0]: 1, ids[1]: 2}
    invited = [e for e in ledger_events(allocator, intake_id) if isinstance(e, Ledger.Invited)]
    submitted_at = registry.get_case(ids[0]).submitted_at
    assert invited[0].deadline == submitted_at + timedelta(days=28)


def test_withdrawal_re_offers_the_same_slot_to_the_first_waiting(world):
    registry, allocator = world
    intake_id = intake(registry, "wd", capacity=2)
    ids = [enter(registry, "wd", n) for n in range(4)]
    catch_up(registry, allocator)
    registry.withdraw(ids[0], expected_version=4, reason="", idempotency_key="w")
    catch_up(registry, allocator)
    ledger = allocator.ledger_of(intake_id)
    assert ledger.slot_of == {ids[2]: 1, ids[1]: 2}
    assert list(ledger.waitlists["general"]) == [ids[3]]


def test_expiry_releases_every_overdue_offer_and_invites_in_waitlist_order(world):
    registry, allocator = world
    intake_id = intake(registry, "ex", capacity=2, document_deadline_days=10)
    ids = [enter(registry, "ex", n) for n in range(5)]
    catch_up(registry, allocator)
    later = datetime.now(UTC) + timedelta(days=11)
    registry.check_deadlines("ex", later, actor="t")
    catch_up(registry, allocator)
    ledger = allocator.ledger_of(intake_id)
    assert ledger.states[ids[0]] == ledger.states[ids[1]] == "expired"
    assert ledger.slot_of == {ids[2]: 1, ids[3]: 2}
    assert ledger.deadlines[ids[2]] == later + timedelta(days=10)
    # time checked again before the new deadlines: nothing changes
    registry.check_deadlines("ex", later + timedelta(days=1), actor="t")
    catch_up(registry, allocator)
    assert ledger.slot_of == {ids[2]: 1, ids[3]: 2}


def test_reserved_pool_has_its_own_slots_and_waitlist(world):
    registry, allocator = world
    intake_id = intake(registry, "pl", capacity=3, pools={"alternate": 1})
    general = [enter(registry, "pl", n) for n in range(3)]
    alternate = [enter(registry, "pl", n, pool="alternate") for n in range(10, 12)]
    catch_up(registry, allocator)
    ledger = allocator.ledger_of(intake_id)
    assert ledger.slot_of == {general[0]: 1, general[1]: 2, alternate[0]: 3}
    assert list(ledger.waitlists["general"]) == [general[2]]
    assert list(ledger.waitlists["alternate"]) == [alternate[1]]


def test_registration_in_an_unknown_pool_is_refused(world):
    registry, _ = world
    intake(registry, "np", capacity=3)
    from domain.errors import InvalidValue

    with pytest.raises(InvalidValue):
        registry.register("np", about_you(1), language="en", idempotency_key="k", pool="vip")


def test_lottery_commits_at_open_draws_at_close_and_audits_clean(world):
    registry, allocator = world
    intake_id = intake(registry, "lt", capacity=3, policy="lottery", waitlist_length=4)
    ids = [enter(registry, "lt", n) for n in range(10)]
    registry.withdraw(ids[9], expected_version=4, reason="", idempotency_key="w")
    close_and_draw(registry, "lt")
    catch_up(registry, allocator)
    events = ledger_events(allocator, intake_id)
    draw = next(e for e in events if isinstance(e, Ledger.DrawMade))
    opened = next(e for e in registry.events.get(intake_id) if isinstance(e, Intake.Opened))
    inputs = next(
        e for e in registry.events.get(intake_id) if isinstance(e, Intake.DrawInputsRecorded)
    )
    assert commitment(inputs.secret) == opened.seed_commitment
    assert draw.seed == draw_seed(inputs.secret, OPERATOR_VALUE)
    assert draw.entries == 9
    kinds = [
        type(e).__name__
        for e in events
        if isinstance(e, Ledger.PlaceGranted | Ledger.Waitlisted | Ledger.NotSelected)
    ]
    assert kinds == ["PlaceGranted"] * 3 + ["Waitlisted"] * 4 + ["NotSelected"] * 2
    assert set(draw.fairness) == {
        "deciles",
        "chi_square",
        "degrees_of_freedom",
        "p_value",
        "rank_sum",
    }
    assert draw.fairness["rank_sum"]["selected"] == 3
    assert draw.fairness["rank_sum"]["others"] == 6

    log = [
        registry.mapper.to_domain_event(n)
        for n in registry.recorder.select_notifications(
            start=0, limit=1000, topics=Allocator.topics, inclusive_of_start=False
        )
    ]
    audit = recompute_draw(log, events, intake_id)
    assert audit.ok, audit.checks


def test_audit_catches_a_reordered_or_altered_draw(world):
    registry, allocator = world
    intake_id = intake(registry, "tm", capacity=2, policy="lottery")
    for n in range(6):
        enter(registry, "tm", n)
    close_and_draw(registry, "tm")
    catch_up(registry, allocator)
    events = ledger_events(allocator, intake_id)
    log = [
        registry.mapper.to_domain_event(n)
        for n in registry.recorder.select_notifications(
            start=0, limit=1000, topics=Allocator.topics, inclusive_of_start=False
        )
    ]
    assert recompute_draw(log, events, intake_id).ok

    granted = [i for i, e in enumerate(events) if isinstance(e, Ledger.PlaceGranted)]
    waiting = [i for i, e in enumerate(events) if isinstance(e, Ledger.Waitlisted)]
    swapped = list(events)
    first, other = granted[0], waiting[0]
    swapped[first], swapped[other] = (
        replace(events[first], case_id=events[other].case_id),
        replace(events[other], case_id=events[first].case_id),
    )
    assert not recompute_draw(log, swapped, intake_id).ok
    assert not compare_ledgers(swapped, events)[0]

    draw_at = next(i for i, e in enumerate(events) if isinstance(e, Ledger.DrawMade))
    other_seed = list(events)
    other_seed[draw_at] = replace(events[draw_at], seed="0" * 64)
    failed = {
        name for name, held, _ in recompute_draw(log, other_seed, intake_id).checks if not held
    }
    assert "the ledger drew with the seed the log gives" in failed

    flattering = list(events)
    figures = {**events[draw_at].fairness, "p_value": 0.999999}
    flattering[draw_at] = replace(events[draw_at], fairness=figures)
    failed = {
        name for name, held, _ in recompute_draw(log, flattering, intake_id).checks if not held
    }
    assert failed == {"the fairness figures match a recomputation from the log"}


def test_a_draw_recorded_before_the_rank_sum_still_matches_its_replay(world):
    registry, allocator = world
    intake_id = intake(registry, "old", capacity=2, policy="lottery")
    for n in range(6):
        enter(registry, "old", n)
    close_and_draw(registry, "old")
    catch_up(registry, allocator)
    events = ledger_events(allocator, intake_id)
    draw_at = next(i for i, e in enumerate(events) if isinstance(e, Ledger.DrawMade))
    before = list(events)
    older = {k: v for k, v in events[draw_at].fairness.items() if k != "rank_sum"}
    before[draw_at] = replace(events[draw_at], fairness=older)
    assert compare_ledgers(before, events)[0]
    assert recompute_draw(registry_log(registry), before, intake_id).ok
    # but a recorded figure that differs is a difference
    altered = list(events)
    altered[draw_at] = replace(events[draw_at], fairness={**older, "chi_square": -1.0})
    assert not compare_ledgers(altered, events)[0]


def test_a_fresh_allocator_replaying_the_log_records_the_same_ledgers(world):
    registry, allocator = world
    first = intake(registry, "r1", capacity=2, waitlist_length=1)
    second = intake(registry, "r2", capacity=2, policy="lottery")
    ids = [enter(registry, "r1", n) for n in range(5)]
    for n in range(5):
        enter(registry, "r2", n)
    registry.withdraw(ids[1], expected_version=4, reason="", idempotency_key="w")
    close_and_draw(registry, "r2")
    catch_up(registry, allocator, batch=2)
    replay = Allocator(env=POPO)
    catch_up(registry, replay, batch=1000)
    for intake_id in (first, second):
        same, detail = compare_ledgers(
            ledger_events(allocator, intake_id), ledger_events(replay, intake_id)
        )
        assert same, detail


def test_late_submission_after_close_is_not_selected_explicitly(world):
    registry, allocator = world
    intake_id = intake(registry, "lc", capacity=5)
    done = registry.register("lc", about_you(1), language="en", idempotency_key="k")
    registry.close_intake("lc", actor="t")
    from domain.errors import IntakeNotOpen

    with pytest.raises(IntakeNotOpen):
        registry.submit(done.case_id, expected_version=1, language="en", idempotency_key="s")
    catch_up(registry, allocator)
    assert allocator.ledger_of(intake_id).granted == 0


# The published algorithm, written out independently of domain.policies


def test_lottery_ranking_follows_the_documented_formula():
    seed = "ab" * 32
    entries = [uuid4() for _ in range(50)]
    digest, combined, ranked = lottery_ranking(seed, entries)
    expected_digest = hashlib.sha256("\n".join(sorted(e.hex for e in entries)).encode()).hexdigest()
    expected_combined = hashlib.sha256((seed + expected_digest).encode()).hexdigest()
    expected = sorted(
        entries, key=lambda e: hashlib.sha256((expected_combined + e.hex).encode()).hexdigest()
    )
    assert (digest, combined, ranked) == (expected_digest, expected_combined, expected)
    assert entries_digest(reversed(entries)) == digest  # order of entry does not matter
    assert combined_seed(seed, digest) == combined
    assert (
        rank_key(combined, entries[0])
        == hashlib.sha256((combined + entries[0].hex).encode()).hexdigest()
    )


def test_fairness_check_sees_no_bias_in_a_random_draw_and_flags_a_biased_one():
    rng = random.Random(7)
    entries = [UUID(int=rng.getrandbits(128)) for _ in range(20_000)]
    _, _, ranked = lottery_ranking("cd" * 32, entries)
    fair = fairness(entries, set(ranked[:2_000]))
    assert fair.degrees_of_freedom == 9
    assert fair.p_value > 0.001
    assert sum(size for size, _ in fair.deciles) == 20_000
    # DV-2012: a draw that picked almost only the earliest registrants
    biased = fairness(entries, set(entries[:1_800]) | set(ranked[:200]))
    assert biased.p_value < 1e-12
    assert biased.chi_square > 1_000
    assert fair.rank_sum is not None
    assert biased.rank_sum is not None
    assert fair.rank_sum.p_value > 0.001
    assert biased.rank_sum.p_value < 1e-12
    assert biased.rank_sum.z < 0  # the selected came early


def test_the_rank_sum_test_sees_a_bias_the_ten_groups_miss():
    # every group has its share of the selected, but within each group they are the earliest
    entries = [UUID(int=i + 1) for i in range(10_000)]
    early_in_each_group = {e for g in range(10) for e in entries[g * 1000 : g * 1000 + 100]}
    figures = fairness(entries, early_in_each_group)
    assert figures.chi_square == pytest.approx(0.0)
    assert figures.p_value == pytest.approx(1.0)
    assert figures.rank_sum is not None
    assert figures.rank_sum.p_value < 0.05


@pytest.mark.parametrize(
    ("positions", "n", "u", "expected"),
    [
        ((1, 2, 3), 10, 0.0, 0.022654494080089346),
        ((8, 9, 10), 10, 21.0, 0.022654494080089346),
        ((2, 5, 7, 11, 19), 20, 29.0, 0.4849913194671678),
    ],
)
def test_rank_sum_matches_reference_values(positions, n, u, expected):
    # reference values from scipy.stats.mannwhitneyu(method="asymptotic", use_continuity=True)
    entries = [UUID(int=i) for i in range(1, n + 1)]
    result = rank_sum(entries, {entries[p - 1] for p in positions})
    assert result.u == u
    assert result.p_value == pytest.approx(expected, abs=1e-12)
    assert (result.selected, result.others) == (len(positions), n - len(positions))


@pytest.mark.parametrize(
    ("x", "df", "expected"),
    [
        (9.0, 9, 0.4372741889),
        (16.9, 9, 0.0503051901),
        (2.0, 1, 0.1572992071),
        (0.01, 3, 0.9997348349),
        (30.0, 9, 0.0004387218),
    ],
)
def test_chi_square_survival_matches_reference_values(x, df, expected):
    # reference values from scipy.stats.chi2.sf
    assert chi_square_survival(x, df) == pytest.approx(expected, abs=1e-9)


def test_a_pool_s_unused_places_move_to_the_general_waitlist_at_a_first_come_close(world):
    registry, allocator = world
    intake_id = intake(registry, "mv", capacity=5, pools={"alternate": 2, "braille": 1})
    general = [enter(registry, "mv", n) for n in range(5)]
    alternate = enter(registry, "mv", 10, pool="alternate")
    catch_up(registry, allocator)
    ledger = allocator.ledger_of(intake_id)
    # general = 5 - 3 reserved = slots 1-2; alternate 3-4; braille 5
    assert ledger.slot_of == {general[0]: 1, general[1]: 2, alternate: 3}
    assert list(ledger.waitlists["general"]) == general[2:]
    registry.close_intake("mv", actor="t")
    catch_up(registry, allocator)
    events = ledger_events(allocator, intake_id)
    moved = [e for e in events if isinstance(e, Ledger.PlacesMoved)]
    assert [(m.from_pool, m.to_pool, m.slots) for m in moved] == [
        ("alternate", "general", [4]),
        ("braille", "general", [5]),
    ]
    assert ledger.slot_of == {
        general[0]: 1,
        general[1]: 2,
        alternate: 3,
        general[2]: 4,
        general[3]: 5,
    }
    assert list(ledger.waitlists["general"]) == [general[4]]
    # the alternate holder leaves, nobody waits in the pool: the slot goes to general too
    registry.withdraw(alternate, expected_version=4, reason="", idempotency_key="w")
    catch_up(registry, allocator)
    assert ledger.slot_of[general[4]] == 3
    assert ledger.granted == 5
    replay = Allocator(env=POPO)
    catch_up(registry, replay)
    same, detail = compare_ledgers(
        ledger_events(allocator, intake_id), ledger_events(replay, intake_id)
    )
    assert same, detail


def test_kept_reserved_places_stay_in_their_pool(world):
    registry, allocator = world
    intake_id = intake(registry, "kp", capacity=3, pools={"alternate": 1}, unused_reserved="kept")
    general = [enter(registry, "kp", n) for n in range(3)]
    registry.close_intake("kp", actor="t")
    catch_up(registry, allocator)
    ledger = allocator.ledger_of(intake_id)
    assert ledger.granted == 2
    assert list(ledger.waitlists["general"]) == [general[2]]
    assert not any(isinstance(e, Ledger.PlacesMoved) for e in ledger_events(allocator, intake_id))


def test_a_lottery_with_two_pools_fills_each_and_moves_what_a_pool_leaves(world):
    registry, allocator = world
    intake_id = intake(
        registry,
        "tp",
        capacity=10,
        policy="lottery",
        waitlist_length=5,
        pools={"alternate": 3, "braille": 2},
    )
    general = [enter(registry, "tp", n) for n in range(12)]
    alternate = [enter(registry, "tp", n, pool="alternate") for n in range(20, 25)]
    braille = [enter(registry, "tp", 30, pool="braille")]
    close_and_draw(registry, "tp")
    catch_up(registry, allocator)
    ledger = allocator.ledger_of(intake_id)
    held = {
        pool: sorted(s for s, c in ledger.holders.items() if ledger.entry_pools[c] == pool)
        for pool in ("general", "alternate", "braille")
    }
    # general 1-5, alternate 6-8, braille 9-10; braille had one entry: slot 10 moved to general
    assert held["alternate"] == [6, 7, 8]
    assert held["braille"] == [9]
    assert held["general"] == [1, 2, 3, 4, 5, 10]
    assert len(ledger.waitlists["alternate"]) == 2
    assert ledger.granted == 10
    assert set(ledger.holders.values()) <= set(general + alternate + braille)
    moved = [e for e in ledger_events(allocator, intake_id) if isinstance(e, Ledger.PlacesMoved)]
    assert [(m.from_pool, m.slots) for m in moved] == [("braille", [10])]
    audit = recompute_draw(registry_log(registry), ledger_events(allocator, intake_id), intake_id)
    assert audit.ok, audit.checks
