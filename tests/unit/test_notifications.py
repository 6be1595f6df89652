"""The notifier's rules on the in-memory backend: which messages the logs give, with which ids."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.utils import get_topic

from domain.allocator import Allocator
from domain.notifications import IntakeNotices, Message, Notifications
from domain.registry import Registry
from projections.runner import catch_up
from projections.worker import record_notifications
from tests.conftest import SECRET, about_you, close_and_draw, submit_person

MEMORY = {"PERSISTENCE_MODULE": "eventsourcing.popo"}
DAY = timedelta(days=1)


class Logs:
    def __init__(self) -> None:
        self.registry = Registry(env=MEMORY, secret=SECRET)
        self.allocator = Allocator(env=MEMORY)
        self.notifications = Notifications(env=MEMORY)

    def settle(self, notifications: Notifications | None = None) -> None:
        catch_up(self.registry, self.allocator)
        record_notifications(self.registry, self.allocator, notifications or self.notifications)

    def messages(self, notifications: Notifications | None = None) -> list[Message]:
        app = notifications or self.notifications
        found = app.recorder.select_notifications(0, 1000, topics=[get_topic(Message.Recorded)])
        return [app.get_message(n.originator_id) for n in found]

    def of(self, case_id: UUID) -> list[tuple[str, dict[str, Any]]]:
        return [(m.kind.value, m.facts) for m in self.messages() if m.case_id == case_id]


@pytest.fixture
def logs() -> Iterator[Logs]:
    found = Logs()
    yield found
    found.registry.close()


def define(registry: Registry, code: str, **settings: Any) -> None:
    registry.define_intake(code=code, name=code, stream="outside", actor="t", **settings)
    registry.open_intake(code, actor="t")


def test_an_invitation_is_reminded_a_week_and_a_day_before_its_deadline_once_each(
    logs: Logs,
) -> None:
    define(logs.registry, "fc", capacity=1, policy="first_come", document_deadline_days=14)
    case_id = submit_person(logs.registry, "fc", 1)
    logs.settle()
    ((_, invitation),) = [k for k in logs.of(case_id) if k[0] == "invitation"]
    deadline = _deadline(invitation)
    for at in (deadline - 8 * DAY, deadline - 6 * DAY, deadline - 5 * DAY, deadline - DAY / 2):
        logs.registry.check_deadlines("fc", at, actor="t")
        logs.settle()
    reminders = [facts["days"] for kind, facts in logs.of(case_id) if kind == "reminder"]
    assert reminders == [7, 1]


def test_an_offer_taken_up_or_made_inside_the_week_gets_no_week_reminder(logs: Logs) -> None:
    define(logs.registry, "short", capacity=2, policy="first_come", document_deadline_days=5)
    kept, late = submit_person(logs.registry, "short", 1), submit_person(logs.registry, "short", 2)
    logs.settle()
    logs.registry.decide(
        kept, "submit_application", None, "k",
        lambda case: case.submit_application((), (), "en", "k", "applicant"),
    )  # fmt: skip
    logs.settle()
    (deadline,) = {_deadline(f) for k, f in logs.of(late) if k == "invitation"}
    logs.registry.check_deadlines("short", deadline - 3 * DAY, actor="t")  # inside the week
    logs.settle()
    assert [k for k, _ in logs.of(late)] == ["registration", "submission", "invitation"]
    logs.registry.check_deadlines("short", deadline - DAY / 2, actor="t")
    logs.settle()
    assert [f["days"] for k, f in logs.of(late) if k == "reminder"] == [1]
    assert [k for k, _ in logs.of(kept)] == ["registration", "submission", "invitation"]


def test_people_past_the_places_of_a_lottery_are_told_they_were_not_drawn(logs: Logs) -> None:
    define(logs.registry, "lot", capacity=1, policy="lottery", waitlist_length=1)
    people = [submit_person(logs.registry, "lot", n) for n in range(1, 4)]
    close_and_draw(logs.registry, "lot")
    logs.settle()
    last = sorted(logs.of(p)[-1][0] for p in people)
    assert last == ["invitation", "not_selected", "waitlisted"]
    reasons = [f["reason"] for p in people for k, f in logs.of(p) if k == "not_selected"]
    assert reasons == ["not_drawn"]


def test_a_first_come_intake_with_a_full_waitlist_says_so(logs: Logs) -> None:
    define(logs.registry, "fc", capacity=1, policy="first_come", waitlist_length=1)
    people = [submit_person(logs.registry, "fc", n) for n in range(1, 4)]
    logs.settle()
    assert logs.of(people[2])[-1] == ("not_selected", {"reason": "waitlist_full"})
    assert logs.of(people[1])[-1] == ("waitlisted", {"rank": 1, "position": 1})


def _withdraw(registry: Registry, case_id: UUID) -> None:
    version = registry.get_case(case_id).version
    registry.withdraw(
        case_id, expected_version=version, reason="t", idempotency_key=f"w-{case_id.hex}"
    )


def test_people_moving_up_the_waitlist_are_told_at_ten_and_when_next_in_line(
    logs: Logs,
) -> None:
    define(logs.registry, "fc", capacity=1, policy="first_come")
    holder, *waiting = [submit_person(logs.registry, "fc", n) for n in range(1, 15)]
    logs.settle()
    positions = [f["position"] for p in waiting for k, f in logs.of(p) if k == "waitlisted"]
    assert positions == list(range(1, 14))
    # When the second in line withdraws, the eleventh becomes the tenth (and is told)
    _withdraw(logs.registry, waiting[1])
    logs.settle()
    assert _moved_up(logs, waiting) == {waiting[10]: [10]}
    # When the first in line withdraws and, in the same batch, the holder gives up the place:
    # the third moves up to first and is invited at once, so only the invitation is sent
    _withdraw(logs.registry, waiting[0])
    _withdraw(logs.registry, holder)
    logs.settle()
    assert [k for k, _ in logs.of(waiting[2])][-1] == "invitation"
    assert _moved_up(logs, waiting) == {
        waiting[10]: [10],  # and now 8: told once
        waiting[11]: [10],
        waiting[12]: [10],
        waiting[3]: [1],  # next in line after the invitation
    }


def test_a_withdrawal_behind_someone_does_not_move_them(logs: Logs) -> None:
    define(logs.registry, "fc", capacity=1, policy="first_come")
    _, *waiting = [submit_person(logs.registry, "fc", n) for n in range(1, 4)]
    logs.settle()
    _withdraw(logs.registry, waiting[1])  # the second of two: nobody is behind
    logs.settle()
    assert _moved_up(logs, waiting) == {}


def test_notices_started_before_positions_were_kept_tell_nobody_they_moved_up() -> None:
    state: dict[str, Any] = {"ledger_id": None, "policy": "first_come"}
    IntakeNotices.Started.upcast_v1_v2(state)
    assert state["tracks_waitlist"] is False
    notices = IntakeNotices(ledger_id=uuid4(), policy="first_come", tracks_waitlist=False)
    assert notices.stop_waiting(uuid4()) == []


def _moved_up(logs: Logs, cases: list[UUID]) -> dict[UUID, list[int]]:
    found: dict[UUID, list[int]] = {}
    for case_id in cases:
        reached = [f["position"] for k, f in logs.of(case_id) if k == "moved_up"]
        if reached:
            found[case_id] = reached
    return found


def test_replaying_the_logs_into_a_new_notifier_gives_the_same_messages_with_the_same_ids(
    logs: Logs,
) -> None:
    define(logs.registry, "fc", capacity=1, policy="first_come")
    for n in range(1, 4):
        submit_person(logs.registry, "fc", n)
    logs.settle()
    fresh = Notifications(env=MEMORY)
    logs.settle(fresh)
    live = [(m.id, m.kind, m.case_id, m.facts) for m in logs.messages()]
    rebuilt = [(m.id, m.kind, m.case_id, m.facts) for m in logs.messages(fresh)]
    assert sorted(live, key=str) == sorted(rebuilt, key=str)
    assert len(live) == 9


def test_the_registration_confirmation_is_recorded_once_when_the_email_is_first_given(
    logs: Logs,
) -> None:
    define(logs.registry, "fc", capacity=1, policy="first_come")
    done = logs.registry.register("fc", about_you(1), language="en", idempotency_key="r1")
    logs.settle()
    assert logs.of(done.case_id) == []  # no address yet: nothing to send it to
    for version, email in ((1, "a@example.org"), (2, "b@example.org")):
        logs.registry.save_step(
            done.case_id, "contact", {"email": email}, expected_version=version,
            language="en", idempotency_key=f"c{version}",
        )  # fmt: skip
        logs.settle()
    assert logs.of(done.case_id) == [("registration", {})]


def _deadline(facts: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(facts["deadline"])
