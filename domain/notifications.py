"""The notifier: follows the Registry's and the Allocator's logs and records one Message per email.

Notifications is an eventsourcing EventSourcedProjection of its own (its own store beside the
Registry's and the Allocator's). Each batch of new Messages is written with the position reached
in the log it came from, in one transaction, so a replay or a restart never records a message
twice. A Message's id is derived from where it came from (log, position, kind), so even a rebuild
from position 0 gives every message the id it had. Sending is separate (domain/mailer.py): it
records Delivered, Failed, Rejected or Abandoned on the Message.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import Tracking
from eventsourcing.projection import EventSourcedProjection
from eventsourcing.utils import get_topic

from domain.allocator import LATE, NOT_DRAWN, WAITLIST_FULL, WITHDRAWN_BEFORE_DRAW
from domain.case import Case
from domain.errors import MessageNotBounceable, MessageNotRetryable
from domain.identity import NAMESPACE
from domain.intake import Intake
from domain.ledger import Ledger, ledger_id
from domain.values import Step

REGISTRY = "Registry"
ALLOCATOR = "Allocator"
REMINDER_DAYS = (7, 1)  # reminders before an invitation's deadline, in days
# Waitlist positions worth an email when someone reaches them by moving up (1: next in line).
WAITLIST_MILESTONES = (500, 100, 50, 10, 1)


class Kind(StrEnum):
    """What a message tells the applicant."""

    REGISTRATION = "registration"  # reference (never the access code), once the email is known
    SUBMISSION = "submission"
    INVITATION = "invitation"  # also a place given from the waitlist
    WAITLISTED = "waitlisted"
    NOT_SELECTED = "not_selected"
    OFFER_EXPIRED = "offer_expired"
    REMINDER = "reminder"  # facts: days (7 or 1), deadline
    MOVED_UP = "moved_up"  # facts: position (one of WAITLIST_MILESTONES)
    INFORMATION_REQUESTED = "information_requested"
    DECISION = "decision"  # facts: outcome approved | refused
    RECOVERY = "recovery"  # facts: request_id, expires_at, language


class NotSelectedReason(StrEnum):
    """Why a case got no place, in the words the message uses."""

    NOT_DRAWN = "not_drawn"
    WAITLIST_FULL = "waitlist_full"
    LATE = "late"


def message_id(source: str, position: int, kind: str) -> UUID:
    """The id of the message of `kind` caused by the event at `position` of log `source`."""
    return uuid5(NAMESPACE, f"message:{source}:{position}:{kind}")


def moved_up_message_id(source: str, position: int, reached: int) -> UUID:
    """The message telling a case it reached waitlist position `reached` because of the event at
    `position` (one departure can move several people past a milestone)."""
    return message_id(source, position, f"{Kind.MOVED_UP}-{reached}")


def registration_message_id(case_id: UUID) -> UUID:
    """One registration confirmation per case, whichever contact step first gives the email."""
    return uuid5(NAMESPACE, f"message:registration:{case_id.hex}")


def reminder_message_id(invited_position: int, days: int) -> UUID:
    """One reminder per invitation (the Invited event's position) and per day count."""
    return message_id(ALLOCATOR, invited_position, f"{Kind.REMINDER}-{days}")


class Message(Aggregate):
    """One email to one applicant: what it says (kind and facts), then what became of it.

    The recipient and the text are not stored: they are taken from the case when it is sent
    (the contact email on file at send time, the case's language), so the log holds no address.
    """

    id: UUID  # given by the notifier: derived from where the message came from

    class Recorded(Aggregate.Created):
        kind: str
        case_id: UUID
        source: str  # the log it came from, and where
        position: int
        facts: dict[str, Any]

    class Delivered(Aggregate.Event):
        attempt: int
        transport: str  # "smtp" or "outbox"

    class Failed(Aggregate.Event):
        """A temporary failure (connection refused, 4xx): tried again at retry_at."""

        attempt: int
        error: str
        retry_at: datetime

    class Rejected(Aggregate.Event):
        """A permanent failure (5xx, no address on file): never tried again."""

        attempt: int
        error: str

    class Abandoned(Aggregate.Event):
        """Failed too many times: given up."""

        attempt: int
        error: str

    class Requeued(Aggregate.Event):
        """An operator asked for a rejected, abandoned or bounced message to be tried again, now
        (its attempts count from 1 again)."""

        actor: str

    class Bounced(Aggregate.Event):
        """A delivery status notification (RFC 3464) said the relay could not deliver it after
        accepting it: `status` is the report's (e.g. 5.1.1), `diagnostic` its Diagnostic-Code."""

        status: str
        diagnostic: str
        reported_by: str  # the report's Reporting-MTA, "" when it names none
        actor: str

    @event(Recorded)
    def __init__(
        self, kind: str, case_id: UUID, source: str, position: int, facts: dict[str, Any]
    ) -> None:
        self.kind = Kind(kind)
        self.case_id = case_id
        self.source = source
        self.position = position
        self.facts = dict(facts)
        self.attempts = 0
        self.state = "pending"  # pending, delivered, rejected, abandoned, bounced
        self.retry_at: datetime | None = None
        self.last_error = ""

    @property
    def done(self) -> bool:
        return self.state != "pending"

    @event(Delivered)
    def delivered(self, attempt: int, transport: str) -> None:
        self.attempts = attempt
        self.state = "delivered"
        self.retry_at = None

    @event(Failed)
    def failed(self, attempt: int, error: str, retry_at: datetime) -> None:
        self.attempts = attempt
        self.retry_at = retry_at
        self.last_error = error

    @event(Rejected)
    def rejected(self, attempt: int, error: str) -> None:
        self.attempts = attempt
        self.state = "rejected"
        self.last_error = error

    @event(Abandoned)
    def abandoned(self, attempt: int, error: str) -> None:
        self.attempts = attempt
        self.state = "abandoned"
        self.last_error = error

    def requeue(self, actor: str) -> None:
        if self.state not in {"rejected", "abandoned", "bounced"}:
            raise MessageNotRetryable(
                f"message {self.id} is {self.state}: only a rejected, abandoned or "
                "bounced message is tried again"
            )
        self._requeued(actor=actor)

    def bounce(self, status: str, diagnostic: str, reported_by: str, actor: str) -> bool:
        """Record a bounce of a delivered message; False when it is already recorded as
        bounced (the same report read twice records nothing more)."""
        if self.state == "bounced":
            return False
        if self.state != "delivered":
            raise MessageNotBounceable(
                f"message {self.id} is {self.state}: only a delivered message can bounce"
            )
        self._bounced(status=status, diagnostic=diagnostic, reported_by=reported_by, actor=actor)
        return True

    @event(Bounced)
    def _bounced(self, status: str, diagnostic: str, reported_by: str, actor: str) -> None:
        self.state = "bounced"
        self.last_error = f"bounced {status}: {diagnostic}".strip()

    @event(Requeued)
    def _requeued(self, actor: str) -> None:
        self.attempts = 0
        self.state = "pending"
        self.retry_at = None


@dataclass(frozen=True)
class MessageView:
    """One recorded message as the operator sees it (never its text or address)."""

    id: UUID
    kind: Kind
    case_id: UUID
    state: str
    attempts: int
    last_error: str
    recorded_at: datetime
    retry_at: datetime | None
    source: str
    position: int


def notices_id(ledger: UUID) -> UUID:
    return uuid5(NAMESPACE, f"notices:{ledger.hex}")


class IntakeNotices(Aggregate):
    """What the notifier keeps of one intake's Ledger: its policy, the offers still open (for
    reminders) and the reminders already recorded."""

    class Started(Aggregate.Created):
        ledger_id: UUID
        policy: str
        tracks_waitlist: bool  # False for notices started before waitlist positions were kept

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            # Their Waiting events were never recorded: positions would be wrong, so none are
            # told (the waitlisted email of those gives the rank, as it did).
            state["tracks_waitlist"] = False

    class Waiting(Aggregate.Event):
        case_id: UUID
        pool: str
        rank: int

    class StoppedWaiting(Aggregate.Event):
        """Invited from the waitlist, or left it (withdrew, was refused)."""

        case_id: UUID

    class OfferOpened(Aggregate.Event):
        case_id: UUID
        deadline: datetime
        position: int  # of the Invited event in the Allocator's log
        invited_at: datetime  # the Invited event's time

    class OfferClosed(Aggregate.Event):
        case_id: UUID

    class Reminded(Aggregate.Event):
        case_id: UUID
        days: int

    @staticmethod
    def create_id(ledger_id: UUID) -> UUID:
        return notices_id(ledger_id)

    @event(Started)
    def __init__(self, ledger_id: UUID, policy: str, tracks_waitlist: bool = True) -> None:
        self.ledger_id = ledger_id
        self.policy = policy
        self.tracks_waitlist = tracks_waitlist
        # case -> (deadline, position of the Invited event, its time)
        self.offers: dict[UUID, tuple[datetime, int, datetime]] = {}
        self.reminded: dict[UUID, set[int]] = {}
        # Each pool's waitlist as the ranks still waiting, in order (position = index + 1).
        self.ranks: dict[str, list[int]] = {}
        self.waiting_at: dict[UUID, tuple[str, int]] = {}  # case -> (pool, rank)
        self.case_at: dict[tuple[str, int], UUID] = {}

    def position_of(self, case_id: UUID) -> int | None:
        """The case's place on its pool's waitlist (1: next in line), None if not waiting."""
        found = self.waiting_at.get(case_id)
        if found is None:
            return None
        pool, rank = found
        return bisect.bisect_left(self.ranks[pool], rank) + 1

    def stop_waiting(self, case_id: UUID) -> list[tuple[UUID, int]]:
        """Takes the case off its waitlist; returns (case, new position) of those behind it who
        thereby reached one of WAITLIST_MILESTONES."""
        found = self.waiting_at.get(case_id)
        if found is None:
            return []
        pool, rank = found
        left_at = bisect.bisect_left(self.ranks[pool], rank)
        self._stopped_waiting(case_id=case_id)
        ranks = self.ranks[pool]
        return [
            (self.case_at[(pool, ranks[reached - 1])], reached)
            for reached in WAITLIST_MILESTONES
            if left_at <= reached - 1 < len(ranks)
        ]

    @event(Waiting)
    def wait(self, case_id: UUID, pool: str, rank: int) -> None:
        ranks = self.ranks.setdefault(pool, [])
        bisect.insort(ranks, rank)  # ranks are given in order: this appends
        self.waiting_at[case_id] = (pool, rank)
        self.case_at[(pool, rank)] = case_id

    @event(StoppedWaiting)
    def _stopped_waiting(self, case_id: UUID) -> None:
        pool, rank = self.waiting_at.pop(case_id)
        ranks = self.ranks[pool]
        del ranks[bisect.bisect_left(ranks, rank)]
        del self.case_at[(pool, rank)]

    def due_reminders(self, at: datetime) -> list[tuple[UUID, datetime, int, int]]:
        """(case, deadline, Invited position, days) of reminders due at `at` and not yet sent.

        Due when `at` has passed deadline - days and the deadline itself has not; only the
        nearest such reminder is sent (a check a day before never also sends the week's), and
        none for a moment before the invitation itself (whose email gave the deadline)."""
        due = []
        for case_id, (deadline, position, invited_at) in self.offers.items():
            if at >= deadline:
                continue
            passed = [d for d in REMINDER_DAYS if invited_at < deadline - timedelta(days=d) <= at]
            if not passed:
                continue
            days = min(passed)
            if days in self.reminded.get(case_id, set()):
                continue
            due.append((case_id, deadline, position, days))
        return sorted(due, key=lambda found: (found[1], found[0].hex))

    @event(OfferOpened)
    def open_offer(
        self, case_id: UUID, deadline: datetime, position: int, invited_at: datetime
    ) -> None:
        self.offers[case_id] = (deadline, position, invited_at)
        self.reminded.pop(case_id, None)

    @event(OfferClosed)
    def close_offer(self, case_id: UUID) -> None:
        self.offers.pop(case_id, None)
        self.reminded.pop(case_id, None)

    @event(Reminded)
    def remind(self, case_id: UUID, days: int) -> None:
        # A 1-day reminder also settles the 7-day one: it is never sent after it.
        self.reminded.setdefault(case_id, set()).update(d for d in REMINDER_DAYS if d >= days)


FOLLOWED = (
    Case.StepSaved,
    Case.Submitted,
    Case.RecoveryRequested,
    Case.InformationRequested,
    Case.Approved,
    Case.Refused,
    Intake.DeadlinesChecked,
    Ledger.Started,
    Ledger.Invited,
    Ledger.Waitlisted,
    Ledger.NotSelected,
    Ledger.LeftWaitlist,
    Ledger.PlaceReleased,
    Ledger.OfferTakenUp,
)


class Notifications(EventSourcedProjection[UUID]):
    """Records a Message for each event an applicant is told about, exactly once.

    Follows two logs: the Allocator's (its Ledgers: invitations, waitlist, releases) and the
    Registry's (cases, and the scheduler's DeadlinesChecked, which makes reminders due). The
    worker reads the Allocator's log first and the Registry's only up to the position the
    Allocator has decided, so when a deadline check is read the offers it concerns are known.
    """

    name = "Notifications"
    topics = tuple(get_topic(cls) for cls in FOLLOWED)

    def __init__(self, env: Any = None) -> None:
        super().__init__(env)
        # This follower is the only writer of IntakeNotices, so what it holds is current.
        self._notices: dict[UUID, IntakeNotices] = {}
        self._batch: dict[UUID, Message] = {}  # messages of the batch being decided
        self._moved_up_in_batch: dict[UUID, list[UUID]] = {}  # case -> its moved-up messages
        self._source = ""  # the log and position of the event being decided
        self._position = 0
        # Quiet: read the logs for what the notifier keeps (open offers, policies) but record
        # no messages: for a database whose history predates the notifier.
        self.quiet = False

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.process_batch([(domain_event, tracking)])

    def process_batch(self, items: Sequence[tuple[Any, Tracking]]) -> int:
        """Decide on each event in order; write the messages and the last position in one go."""
        if not items:
            return 0
        with self.processing_lock:
            processing = ProcessingEvent[UUID](tracking=items[-1][1])
            self._batch = {}
            self._moved_up_in_batch = {}
            try:
                for domain_event, tracking in items:
                    self._position = tracking.notification_id
                    self._source = tracking.application_name
                    self.policy(domain_event, processing)
                if not self.quiet:
                    processing.collect_events(*self._batch.values())
                recordings = self._record(processing)
            except BaseException:
                self._notices.clear()
                raise
            finally:
                self._batch = {}
                self._moved_up_in_batch = {}
        self._notify(recordings)
        return len(processing.events)

    def position(self, source_name: str) -> int:
        """The last position of the source's log that has been read (0: none)."""
        return self.recorder.max_tracking_id(source_name) or 0

    def message_ids(self, *, limit: int, after: int = 0) -> list[tuple[int, UUID]]:
        """(position in this store's log, id) of recorded messages, oldest first."""
        found = self.recorder.select_notifications(
            start=after, limit=limit, topics=[get_topic(Message.Recorded)], inclusive_of_start=False
        )
        return [(n.id, UUID(str(n.originator_id))) for n in found]

    def view_message(self, id: UUID) -> MessageView:
        message = self.get_message(id)
        return MessageView(
            id=message.id,
            kind=message.kind,
            case_id=message.case_id,
            state=message.state,
            attempts=message.attempts,
            last_error=message.last_error,
            recorded_at=message.created_on,
            retry_at=message.retry_at,
            source=message.source,
            position=message.position,
        )

    def requeue(self, id: UUID, *, actor: str) -> None:
        """Try a rejected or abandoned message again (MessageNotRetryable otherwise)."""
        message = self.get_message(id)
        message.requeue(actor)
        self.save(message)

    def bounce(
        self, id: UUID, *, status: str, diagnostic: str, reported_by: str, actor: str
    ) -> bool:
        """Record that a delivered message bounced; False when it already had."""
        message = self.get_message(id)
        recorded = message.bounce(status, diagnostic, reported_by, actor)
        if recorded:
            self.save(message)
        return recorded

    def get_message(self, id: UUID) -> Message:
        found: object = self.repository.get(id)
        assert isinstance(found, Message)
        return found

    # The policy: one method per followed event.

    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: ProcessingEvent[UUID]) -> None:
        """Events not followed send nothing (their position is still recorded)."""

    @policy.register
    def _(self, e: Case.StepSaved, processing: ProcessingEvent[UUID]) -> None:
        if e.step != Step.CONTACT.value or not e.answers.get("email"):
            return
        found = registration_message_id(e.originator_id)
        if found in self._batch or self._exists(found):
            return
        self._add(found, Kind.REGISTRATION, e.originator_id, {})

    @policy.register
    def _(self, e: Case.Submitted, processing: ProcessingEvent[UUID]) -> None:
        self._message(Kind.SUBMISSION, e.originator_id, {})

    @policy.register
    def _(self, e: Case.RecoveryRequested, processing: ProcessingEvent[UUID]) -> None:
        facts = {
            "request_id": e.request_id,
            "expires_at": e.expires_at.isoformat(),
            "language": e.language,
        }
        self._message(Kind.RECOVERY, e.originator_id, facts)

    @policy.register
    def _(self, e: Case.InformationRequested, processing: ProcessingEvent[UUID]) -> None:
        self._message(Kind.INFORMATION_REQUESTED, e.originator_id, {"message": e.message})

    @policy.register
    def _(self, e: Case.Approved, processing: ProcessingEvent[UUID]) -> None:
        self._message(Kind.DECISION, e.originator_id, {"outcome": "approved"})

    @policy.register
    def _(self, e: Case.Refused, processing: ProcessingEvent[UUID]) -> None:
        self._message(Kind.DECISION, e.originator_id, {"outcome": "refused"})

    @policy.register
    def _(self, e: Intake.DeadlinesChecked, processing: ProcessingEvent[UUID]) -> None:
        notices = self._notices_of(ledger_id(e.originator_id))
        if notices is None:
            return
        for case_id, deadline, invited_at, days in notices.due_reminders(e.at):
            notices.remind(case_id, days)
            facts = {"days": days, "deadline": deadline.isoformat()}
            self._add(reminder_message_id(invited_at, days), Kind.REMINDER, case_id, facts)
        processing.collect_events(notices)

    @policy.register
    def _(self, e: Ledger.Started, processing: ProcessingEvent[UUID]) -> None:
        notices = IntakeNotices(ledger_id=e.originator_id, policy=e.policy, tracks_waitlist=True)
        self._notices[e.originator_id] = notices
        processing.collect_events(notices)

    @policy.register
    def _(self, e: Ledger.Invited, processing: ProcessingEvent[UUID]) -> None:
        notices = self._notices_of(e.originator_id)
        if notices is not None:
            self._moved_up(notices, e.case_id)
            notices.open_offer(e.case_id, e.deadline, self._position, e.timestamp)
            processing.collect_events(notices)
        # Told in this batch that it moved up, then invited: the invitation says it all.
        for stale in self._moved_up_in_batch.pop(e.case_id, []):
            self._batch.pop(stale, None)
        self._message(Kind.INVITATION, e.case_id, {"deadline": e.deadline.isoformat()})

    @policy.register
    def _(self, e: Ledger.Waitlisted, processing: ProcessingEvent[UUID]) -> None:
        facts: dict[str, Any] = {"rank": e.rank}
        notices = self._notices_of(e.originator_id)
        if notices is not None and notices.tracks_waitlist:
            notices.wait(e.case_id, e.pool, e.rank)
            processing.collect_events(notices)
            facts["position"] = notices.position_of(e.case_id)
        self._message(Kind.WAITLISTED, e.case_id, facts)

    @policy.register
    def _(self, e: Ledger.LeftWaitlist, processing: ProcessingEvent[UUID]) -> None:
        notices = self._notices_of(e.originator_id)
        if notices is not None and e.case_id in notices.waiting_at:
            self._moved_up(notices, e.case_id)
            processing.collect_events(notices)

    @policy.register
    def _(self, e: Ledger.NotSelected, processing: ProcessingEvent[UUID]) -> None:
        if e.reason == WITHDRAWN_BEFORE_DRAW:
            return  # they withdrew: nothing to tell
        notices = self._notices_of(e.originator_id)
        lottery = notices is not None and notices.policy == "lottery"
        if e.reason == LATE:
            reason = NotSelectedReason.LATE
        elif e.reason == NOT_DRAWN or (lottery and e.reason == WAITLIST_FULL):
            # In a lottery, everyone past the places and the waitlist was simply not drawn.
            reason = NotSelectedReason.NOT_DRAWN
        else:
            reason = NotSelectedReason.WAITLIST_FULL
        self._message(Kind.NOT_SELECTED, e.case_id, {"reason": reason.value})

    @policy.register
    def _(self, e: Ledger.PlaceReleased, processing: ProcessingEvent[UUID]) -> None:
        self._close_offer(e.originator_id, e.case_id, processing)
        if e.reason == "expired":
            self._message(Kind.OFFER_EXPIRED, e.case_id, {})

    @policy.register
    def _(self, e: Ledger.OfferTakenUp, processing: ProcessingEvent[UUID]) -> None:
        self._close_offer(e.originator_id, e.case_id, processing)

    # Helpers

    def _moved_up(self, notices: IntakeNotices, case_id: UUID) -> None:
        """The case leaves its waitlist (if on it): tell those who thereby reach a milestone."""
        for behind, reached in notices.stop_waiting(case_id):
            id = moved_up_message_id(self._source, self._position, reached)
            self._add(id, Kind.MOVED_UP, behind, {"position": reached})
            self._moved_up_in_batch.setdefault(behind, []).append(id)

    def _close_offer(self, ledger: UUID, case_id: UUID, processing: ProcessingEvent[UUID]) -> None:
        notices = self._notices_of(ledger)
        if notices is not None and case_id in notices.offers:
            notices.close_offer(case_id)
            processing.collect_events(notices)

    def _message(self, kind: Kind, case_id: UUID, facts: dict[str, Any]) -> None:
        self._add(message_id(self._source, self._position, kind), kind, case_id, facts)

    def _add(self, id: UUID, kind: Kind, case_id: UUID, facts: dict[str, Any]) -> None:
        message = Message(  # type: ignore[call-arg]  # the library's metaclass accepts id=
            id=id,
            kind=kind.value,
            case_id=case_id,
            source=self._source,
            position=self._position,
            facts=facts,
        )
        self._batch[id] = message

    def _exists(self, id: UUID) -> bool:
        try:
            self.repository.get(id)
        except AggregateNotFoundError:
            return False
        return True

    def _notices_of(self, ledger: UUID) -> IntakeNotices | None:
        found = self._notices.get(ledger)
        if found is None:
            try:
                found = self.repository.get(notices_id(ledger))
            except AggregateNotFoundError:
                return None
            assert isinstance(found, IntakeNotices)
            self._notices[ledger] = found
        return found
