"""The draw nobody can steer: a secret committed at opening, entries fixed at the close, and a
public beacon round published only afterwards (README, "The lottery, precisely")."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime, timedelta

import eventsourcing.domain
import pytest

from domain.allocator import Allocator
from domain.audit import recompute_draw
from domain.beacon import QUICKNET, QUICKNET_SAMPLE, Round, round_time
from domain.errors import IntakeStateError, InvalidValue
from domain.intake import Intake
from domain.ledger import Ledger, ledger_id
from domain.policies import commitment, draw_round, draw_seed, lottery_ranking
from domain.registry import Registry
from projections.runner import catch_up
from tests.conftest import SECRET, submit_person

POPO = {"PERSISTENCE_MODULE": "eventsourcing.popo"}
ROUND = QUICKNET_SAMPLE.round  # a real quicknet round, published at ROUND_TIME
ROUND_TIME = round_time(QUICKNET, ROUND)
CLOSES = ROUND_TIME - timedelta(seconds=300)  # the round fixed at opening is then ROUND


class Clock:
    """One time for the Registry's checks and for every event's timestamp."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fixed = Clock(CLOSES - timedelta(hours=1))
    monkeypatch.setattr(eventsourcing.domain, "datetime_now_with_tzinfo", fixed)
    return fixed


@pytest.fixture
def world(clock):
    registry = Registry(env=POPO, secret=SECRET, clock=clock)
    allocator = Allocator(env=POPO)
    yield registry, allocator
    allocator.close()
    registry.close()


def log_of(registry):
    return [
        registry.mapper.to_domain_event(n)
        for n in registry.recorder.select_notifications(
            start=0, limit=10_000, topics=Allocator.topics, inclusive_of_start=False
        )
    ]


def beacon_lottery(registry, code="bx", entries=12, **options):
    registry.define_intake(
        code=code,
        name=code,
        stream="",
        capacity=options.pop("capacity", 4),
        policy="lottery",
        closes_at=CLOSES,
        waitlist_length=3,
        actor="t",
        **options,
    )
    registry.open_intake(code, actor="t", beacon="drand-quicknet")
    return [submit_person(registry, code, n) for n in range(entries)]


def test_opening_fixes_the_round_and_commits_to_a_secret_kept_outside_the_log(world):
    registry, _ = world
    beacon_lottery(registry, entries=0)
    found = registry.get_intake("bx")
    assert found.draw["mode"] == "beacon"
    assert found.draw["round"] == ROUND
    assert found.draw["round_time"] == ROUND_TIME.isoformat()
    assert found.draw["chain"]["public_key"] == QUICKNET.public_key
    secret = registry.draw_secrets.get(found.id)
    assert secret is not None
    assert commitment(secret) == found.seed_commitment
    stored = b"".join(n.state for n in registry.recorder.select_notifications(start=0, limit=100))
    assert secret.encode() not in stored  # the log holds only its hash until the draw


def test_a_beacon_lottery_needs_a_closing_time(world):
    registry, _ = world
    registry.define_intake(code="nc", name="nc", stream="", capacity=2, policy="lottery", actor="t")
    with pytest.raises(InvalidValue, match="closing time"):
        registry.open_intake("nc", actor="t", beacon="drand-quicknet")
    with pytest.raises(InvalidValue, match="no beacon is called"):
        registry.open_intake("nc", actor="t", beacon="nist-v1")
    assert registry.get_intake("nc").status.value == "defined"


def test_before_the_round_exists_everything_the_operator_holds_does_not_give_the_ranking(
    world, clock
):
    registry, allocator = world
    entries = beacon_lottery(registry)
    clock.now = CLOSES
    registry.close_intake("bx", actor="t")
    catch_up(registry, allocator)
    intake_id = Intake.create_id("bx")
    ledger = list(allocator.events.get(ledger_id(intake_id)))
    fixed = [e for e in ledger if isinstance(e, Ledger.EntriesFixed)]
    assert [f.entries for f in fixed] == [12]  # the entries are fixed and published ...
    assert not any(isinstance(e, Ledger.DrawMade) for e in ledger)  # ... and nobody is drawn

    # Everything the operator holds: the secret, the database, the commitment.
    secret = registry.draw_secrets.get(intake_id)
    assert secret is not None
    assert not any(isinstance(e, Intake.DrawInputsRecorded) for e in log_of(registry))
    # The ranking is a function of the round's randomness as well: two candidate values give
    # two different rankings, so without the round the operator cannot tell who is drawn.
    guesses = {
        tuple(lottery_ranking(draw_seed(secret, hashlib.sha256(g).hexdigest()), entries)[2])
        for g in (b"guess one", b"guess two", b"guess three")
    }
    assert len(guesses) == 3
    # And the operator cannot choose the value: a made-up round is refused ...
    forged = Round(ROUND, "a" * 96, hashlib.sha256(bytes.fromhex("a" * 96)).hexdigest())
    with pytest.raises(InvalidValue, match="signature"):
        registry.draw("bx", actor="t", beacon_round=forged)
    # ... as is the real signature of another round, and a value of the operator's own.
    other = Round(ROUND + 1, QUICKNET_SAMPLE.signature, QUICKNET_SAMPLE.randomness)
    with pytest.raises(InvalidValue, match="round"):
        registry.draw("bx", actor="t", beacon_round=other)
    with pytest.raises(InvalidValue):
        registry.draw("bx", actor="t", operator_value="ab" * 32)
    assert registry.get_intake("bx").draw_inputs == {}


def test_the_draw_with_the_published_round_audits_clean_and_a_replaced_value_fails(world, clock):
    registry, allocator = world
    beacon_lottery(registry)
    clock.now = CLOSES
    registry.close_intake("bx", actor="t")
    assert registry.pending_draw("bx") == (QUICKNET, ROUND)
    with pytest.raises(IntakeStateError):
        registry.open_intake("bx", actor="t")
    clock.now = ROUND_TIME + timedelta(seconds=5)
    registry.draw("bx", actor="t", beacon_round=QUICKNET_SAMPLE)
    with pytest.raises(IntakeStateError, match="has been made"):
        registry.draw("bx", actor="t", beacon_round=QUICKNET_SAMPLE)
    catch_up(registry, allocator)
    intake_id = Intake.create_id("bx")
    ledger = list(allocator.events.get(ledger_id(intake_id)))
    draw = next(e for e in ledger if isinstance(e, Ledger.DrawMade))
    secret = registry.draw_secrets.get(intake_id)
    assert draw.seed == draw_seed(secret, QUICKNET_SAMPLE.randomness)
    log = log_of(registry)
    audit = recompute_draw(log, ledger, intake_id)
    assert audit.ok, audit.checks
    names = {name for name, _, _ in audit.checks}
    assert "the beacon's signature of the round verifies" in names
    assert "the ledger fixed the entries at the close, before the draw's inputs existed" in names

    # Someone with the database replaces the beacon's value by one of their choosing, and
    # replays the allocator so that the ledger agrees with the altered log.
    at = next(i for i, e in enumerate(log) if isinstance(e, Intake.DrawInputsRecorded))
    chosen = "c" * 96
    altered = list(log)
    altered[at] = replace(
        log[at], signature=chosen, randomness=hashlib.sha256(bytes.fromhex(chosen)).hexdigest()
    )
    replay = Allocator(env=POPO)
    for event in altered:
        replay.policy(event, _Collect(replay))
    forged_ledger = list(replay._ledgers[intake_id].collect_events())
    result = recompute_draw(altered, forged_ledger, intake_id)
    failed = {name for name, held, _ in result.checks if not held}
    assert failed == {"the beacon's signature of the round verifies"}
    assert not result.ok


class _Collect:
    """A stand-in for the library's ProcessingEvent when the policy is driven by hand."""

    def __init__(self, allocator: Allocator) -> None:
        self.allocator = allocator

    def collect_events(self, *aggregates: object) -> None:
        """Events stay pending on the ledgers, read afterwards."""


def test_a_late_close_moves_the_round_past_the_close():
    # closed 10 minutes after the fixed round: the draw uses the first round 300 s after it
    closed = ROUND_TIME + timedelta(minutes=10)
    number = draw_round(ROUND, QUICKNET.genesis_time, QUICKNET.period, closed.timestamp(), 300)
    assert round_time(QUICKNET, number) >= closed + timedelta(seconds=300)
    assert round_time(QUICKNET, number - 1) < closed + timedelta(seconds=300)
    # closed on time: the fixed round stands
    on_time = draw_round(ROUND, QUICKNET.genesis_time, QUICKNET.period, CLOSES.timestamp(), 300)
    assert on_time == ROUND


def test_an_operator_draw_is_recorded_with_its_warning(world, clock):
    registry, allocator = world
    registry.define_intake(code="op", name="op", stream="", capacity=2, policy="lottery", actor="t")
    registry.open_intake("op", actor="t", beacon="none")
    for n in range(5):
        submit_person(registry, "op", n)
    with pytest.raises(IntakeStateError, match="after the close"):
        registry.draw("op", actor="t", operator_value="ab" * 32)
    registry.close_intake("op", actor="t")
    with pytest.raises(InvalidValue, match="64 hex"):
        registry.draw("op", actor="t", operator_value="not hex")
    registry.draw("op", actor="t", operator_value="AB" * 32)
    catch_up(registry, allocator)
    intake_id = Intake.create_id("op")
    audit = recompute_draw(
        log_of(registry), list(allocator.events.get(ledger_id(intake_id))), intake_id
    )
    assert audit.ok, audit.checks
    assert any("only as trustworthy as the operator" in w for w in audit.warnings)


def test_a_withdrawal_after_the_close_keeps_the_entry_in_the_ranking_but_not_selected(world, clock):
    registry, allocator = world
    entries = beacon_lottery(registry, capacity=3)
    clock.now = CLOSES
    registry.close_intake("bx", actor="t")
    catch_up(registry, allocator)
    late = entries[5]
    registry.withdraw(late, expected_version=4, reason="", idempotency_key="w")
    registry.draw("bx", actor="t", beacon_round=QUICKNET_SAMPLE)
    catch_up(registry, allocator)
    intake_id = Intake.create_id("bx")
    ledger = list(allocator.events.get(ledger_id(intake_id)))
    draw = next(e for e in ledger if isinstance(e, Ledger.DrawMade))
    assert draw.entries == 12  # the digest fixed at the close still holds
    refused = [e for e in ledger if isinstance(e, Ledger.NotSelected) and e.case_id == late]
    assert [e.reason for e in refused] == ["withdrawn before the draw"]
    granted = [e.case_id for e in ledger if isinstance(e, Ledger.PlaceGranted)]
    assert late not in granted
    assert len(granted) == 3
    audit = recompute_draw(log_of(registry), ledger, intake_id)
    assert audit.ok, audit.checks
