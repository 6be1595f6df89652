"""Notifications end to end on SQLite: events in the logs -> Messages recorded by the notifier ->
emails delivered to a real SMTP server over TCP (aiosmtpd), once each, in the case's language."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain.allocator import Allocator
from domain.case import Case
from domain.identity import derive_key, parse_recovery_token
from domain.mailer import OutboxTransport, Sender, SmtpTransport
from domain.notifications import Notifications
from domain.registry import Registry
from projections.persistence import application_env
from projections.views import migrate
from projections.worker import Worker
from tests.conftest import about_you, close_and_draw
from tests.mail_server import SmtpSink
from web.settings import Settings

OFFICER = uuid4()
DAY = timedelta(days=1)


@dataclass
class Logs:
    env: dict[str, str]
    secret: bytes
    registry: Registry
    worker: Worker
    opened: list[Notifications] = field(default_factory=list)

    def settle(self) -> None:
        self.worker.settle()

    def sender(self, transport: Any, **kwargs: Any) -> Sender:
        notifications = Notifications(
            env=application_env(self.env, Notifications.name, create_table=False)
        )
        self.opened.append(notifications)
        return Sender(notifications, self.registry, self.worker.compose, transport, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def logs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Logs]:
    """The Registry, Allocator and Notifications stores, on SQLite files or PostgreSQL."""
    storage: dict[str, str] = (
        dict(request.getfixturevalue("postgres_db")) if request.param == "postgres" else {}
    )
    env = {
        **storage,
        "CAREPATH_DATA_DIR": str(tmp_path / "data"),
        "CAREPATH_SECRET": "n" * 40,
        "CAREPATH_PUBLIC_URL": "https://apply.example.ca",
        "CAREPATH_MAIL_FROM": "carepath <no-reply@apply.example.ca>",
    }
    secret = env["CAREPATH_SECRET"].encode()
    for cls in (Allocator, Notifications):
        cls(env=application_env(env, cls.name, create_table=True)).close()
    migrate(env)
    registry = Registry(env=application_env(env, Registry.name, create_table=True), secret=secret)
    letters = Settings.from_environ({"ENV": env}).letters()
    found = Logs(env, secret, registry, Worker(env, secret, letters))
    yield found
    for app in found.opened:
        app.close()
    registry.close()


def person(registry: Registry, code: str, n: int, language: str, email: str) -> UUID:
    """Register person n, give every step in `language` and submit: the case id."""
    done = registry.register(code, about_you(n), language=language, idempotency_key=f"{code}-r{n}")
    steps = (("contact", {"email": email}), ("eligibility", {"consent": True}))
    for version, (step, answers) in enumerate(steps, start=1):
        registry.save_step(
            done.case_id,
            step,
            answers,
            expected_version=version,
            language=language,
            idempotency_key=f"{code}-{step}-{n}",
        )
    registry.submit(
        done.case_id, expected_version=3, language=language, idempotency_key=f"{code}-s{n}"
    )
    return done.case_id


def officer(registry: Registry, case_id: UUID, command: str, change: Any) -> None:
    key = f"{command}-{case_id.hex}"
    registry.decide(case_id, command, None, key, lambda case: change(case, key))


def kinds(messages: list[EmailMessage], to: str) -> list[str]:
    return [str(m["X-Carepath-Kind"]) for m in messages if m["To"] == to]


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def html_of(message: EmailMessage) -> str:
    body = message.get_body(("html",))
    assert body is not None
    return str(body.get_content())


def find(messages: list[EmailMessage], to: str, kind: str) -> EmailMessage:
    found = [m for m in messages if m["To"] == to and m["X-Carepath-Kind"] == kind]
    assert len(found) == 1, (to, kind, [m["Subject"] for m in messages if m["To"] == to])
    return found[0]


def test_every_kind_of_message_is_delivered_once_in_the_cases_language(logs: Logs) -> None:
    registry = logs.registry
    # Given a first-come intake with one place and a waitlist of two
    registry.define_intake(
        code="fc", name="Home care 2027", stream="outside", capacity=1,
        policy="first_come", waitlist_length=2, document_deadline_days=14, actor="t",
    )  # fmt: skip
    registry.open_intake("fc", actor="t")
    ana = person(registry, "fc", 1, "en", "ana@example.org")  # the place
    ben = person(registry, "fc", 2, "fr", "ben@example.org")  # the waitlist
    person(registry, "fc", 3, "en", "cy@example.org")  # second on the waitlist
    person(registry, "fc", 7, "en", "dan@example.org")  # the waitlist is full
    logs.settle()
    submitted = registry.get_case(ana).submitted_at
    assert submitted is not None
    deadline = submitted + 14 * DAY
    # When time passes the week before Ana's deadline, then the day before, then the deadline
    registry.check_deadlines("fc", deadline - 6 * DAY, actor="t")
    logs.settle()
    registry.check_deadlines("fc", deadline - 6 * DAY + timedelta(hours=1), actor="t")  # no repeat
    logs.settle()
    registry.check_deadlines("fc", deadline - timedelta(hours=12), actor="t")
    logs.settle()
    registry.check_deadlines("fc", deadline + timedelta(minutes=1), actor="t")
    logs.settle()  # Ana's offer expires; Ben is invited from the waitlist
    # And Ben, invited, sends his application; an officer asks for more, accepts and approves
    officer(registry, ben, "submit_application",  # stage two, sent from the French pages
            lambda case, key: case.submit_application((), (), "fr", key, "applicant"))  # fmt: skip
    officer(registry, ben, "request_information",
            lambda case, key: case.request_information("Envoyez votre permis.", OFFICER, key))  # fmt: skip
    officer(registry, ben, "accept",
            lambda case, key: case.accept_for_processing(OFFICER, key, holds_place=True))  # fmt: skip
    officer(registry, ben, "approve", lambda case, key: case.approve("ok", OFFICER, key))
    # And Ana, who lost her access code, asks for a link from a French page
    request_id = secrets.token_hex(16)
    expires = datetime.now(UTC) + timedelta(minutes=30)
    officer(registry, ana, "request_recovery",
            lambda case, key: case.trigger_event(
                Case.RecoveryRequested, request_id=request_id, expires_at=expires,
                language="fr", actor="applicant"))  # fmt: skip
    # And a lottery with one place and no waitlist draws one of two entries
    registry.define_intake(
        code="lot", name="Lottery 2027", stream="outside", capacity=1,
        policy="lottery", waitlist_length=1, actor="t",
    )  # fmt: skip
    registry.open_intake("lot", actor="t")
    person(registry, "lot", 4, "en", "dee@example.org")
    person(registry, "lot", 5, "fr", "eve@example.org")
    person(registry, "lot", 6, "en", "fay@example.org")
    close_and_draw(registry, "lot")
    logs.settle()

    with SmtpSink() as sink:
        sender = logs.sender(SmtpTransport.from_url(sink.url))
        while sender.sweep():
            pass
        # Then every message was delivered once (by Message-ID) and nothing waits
        assert all(len(copies) == 1 for copies in sink.by_message_id().values())
        assert sender.waiting() == {}
        got = list(sink.messages)
        # And a restarted sender on the same store finds nothing to send
        again = logs.sender(SmtpTransport.from_url(sink.url))
        assert again.sweep() == 0
        assert len(sink.messages) == len(got)

    assert kinds(got, "ana@example.org") == [
        "registration", "submission", "invitation", "reminder", "reminder", "offer_expired",
        "recovery",
    ]  # fmt: skip
    assert kinds(got, "ben@example.org") == [
        "registration", "submission", "waitlisted", "invitation", "information_requested",
        "decision",
    ]  # fmt: skip
    assert kinds(got, "cy@example.org") == ["registration", "submission", "waitlisted", "moved_up"]
    assert kinds(got, "dan@example.org") == ["registration", "submission", "not_selected"]
    lottery = {
        to: kinds(got, to) for to in ("dee@example.org", "eve@example.org", "fay@example.org")
    }
    ends = sorted(k[-1] for k in lottery.values())
    assert ends == ["invitation", "not_selected", "waitlisted"], lottery

    # The registration gives the reference, never the access code
    confirmation = find(got, "ana@example.org", "registration")
    reference = registry.get_case(ana).reference
    assert reference in text_of(confirmation)
    assert reference in html_of(confirmation)
    assert "access code" in text_of(confirmation)
    # Each in its case's language, with plain-text and HTML parts
    invitation = find(got, "ana@example.org", "invitation")
    assert invitation["Subject"] == "A place is offered to you in Home care 2027"
    assert "Eastern" in text_of(invitation)  # the deadline, its zone named
    reminders = [
        m for m in got if m["To"] == "ana@example.org" and m["X-Carepath-Kind"] == "reminder"
    ]
    assert [m["Subject"].split(":")[1].strip()[:6] for m in reminders] == ["7 days", "1 day "]
    waitlisted = find(got, "ben@example.org", "waitlisted")
    assert waitlisted["Content-Language"] == "fr"
    assert "liste d’attente" in waitlisted["Subject"]
    assert "numéro 1" in text_of(waitlisted)
    assert "Envoyez votre permis." in text_of(find(got, "ben@example.org", "information_requested"))
    assert "approuvée" in text_of(find(got, "ben@example.org", "decision"))
    waiting = find(got, "cy@example.org", "waitlisted")
    assert "number 2" in text_of(waiting)
    next_in_line = find(got, "cy@example.org", "moved_up")  # Ben was invited from the waitlist
    assert next_in_line["Subject"] == "You are next in line for a place in Home care 2027"
    assert "now first on it" in text_of(next_in_line)
    not_chosen = find(got, "dan@example.org", "not_selected")
    assert "waitlist is full" in text_of(not_chosen)
    loser = next(to for to, k in lottery.items() if k[-1] == "not_selected")
    assert "not drawn" in text_of(find(got, loser, "not_selected")) or "pas été tiré" in text_of(
        find(got, loser, "not_selected")
    )
    # The recovery link, in the language of the page it was asked from, opens Ana's case
    recovery = find(got, "ana@example.org", "recovery")
    assert recovery["Content-Language"] == "fr"
    link = next(w for w in text_of(recovery).split() if w.startswith("https://"))
    assert link.startswith("https://apply.example.ca/recover/")
    assert link.endswith("?lang=fr")
    token = link.removeprefix("https://apply.example.ca/recover/").removesuffix("?lang=fr")
    key = derive_key(logs.secret, "recovery-link")
    assert parse_recovery_token(key, token) == (ana, request_id)
    # And every Message-ID is derived from the message's id, the same on any resend
    assert all(str(m["Message-ID"]).endswith("@apply.example.ca>") for m in got)


def test_a_temporary_failure_is_retried_with_back_off_and_a_550_is_rejected_at_once(
    logs: Logs,
) -> None:
    registry = logs.registry
    registry.define_intake(
        code="fc", name="Home care", stream="outside", capacity=5, policy="first_come", actor="t"
    )
    registry.open_intake("fc", actor="t")
    person(
        registry, "fc", 1, "en", "ana@example.org"
    )  # 3 messages: registration, submission, invitation
    logs.settle()
    now = [datetime.now(UTC)]
    with SmtpSink() as sink:
        backoff = (timedelta(minutes=1), timedelta(minutes=5))
        sender = logs.sender(
            SmtpTransport.from_url(sink.url), backoff=backoff, clock=lambda: now[0]
        )
        # Given a server that answers the first message 451, the second 550
        sink.answers += ["451 4.3.0 mailbox busy, try later", "550 5.1.1 no such user"]
        # When the sender sweeps
        assert sender.sweep() == 3
        # Then one is delivered, one waits a minute, one is rejected for good
        waiting = sender.waiting()
        assert list(waiting.values()) == [now[0] + timedelta(minutes=1)]
        (retry_id,) = waiting
        failed = sender.notifications.get_message(retry_id)
        assert failed.attempts == 1
        assert "451" in failed.last_error
        states = sorted(sender.notifications.get_message(m).state for m in _message_ids(sender))
        assert states == ["delivered", "pending", "rejected"]
        assert len(sink.messages) == 1
        # And nothing is retried before its time
        assert sender.sweep() == 0
        # When the minute has passed and the server answers 451 again, then 250
        now[0] += timedelta(minutes=1)
        sink.answers.append("451 4.3.0 still busy")
        assert sender.sweep() == 1
        assert sender.waiting() == {retry_id: now[0] + timedelta(minutes=5)}
        now[0] += timedelta(minutes=5)
        assert sender.sweep() == 1
        assert sender.notifications.get_message(retry_id).state == "delivered"
        assert len(sink.messages) == 2
        assert sink.attempts == 5


def test_a_message_failing_more_times_than_the_back_off_allows_is_abandoned(logs: Logs) -> None:
    registry = logs.registry
    registry.define_intake(
        code="fc", name="Home care", stream="outside", capacity=5, policy="first_come", actor="t"
    )
    registry.open_intake("fc", actor="t")
    case_id = registry.register("fc", about_you(1), language="en", idempotency_key="r1").case_id
    registry.save_step(
        case_id, "contact", {"email": "ana@example.org"}, expected_version=1,
        language="en", idempotency_key="c1",
    )  # fmt: skip
    logs.settle()
    now = [datetime.now(UTC)]
    with SmtpSink() as sink:
        sender = logs.sender(
            SmtpTransport.from_url(sink.url), backoff=(timedelta(seconds=1),), clock=lambda: now[0]
        )
        sink.answers += ["421 4.3.2 shutting down", "452 4.3.1 out of storage"]
        assert sender.sweep() == 1
        now[0] += timedelta(seconds=1)
        assert sender.sweep() == 1
        (message_id,) = _message_ids(sender)
        message = sender.notifications.get_message(message_id)
        assert (message.state, message.attempts) == ("abandoned", 2)
        assert sender.waiting() == {}
        assert sink.messages == []


def test_without_an_smtp_server_messages_are_written_to_the_outbox_once(logs: Logs) -> None:
    registry = logs.registry
    registry.define_intake(
        code="fc", name="Home care", stream="outside", capacity=5, policy="first_come", actor="t"
    )
    registry.open_intake("fc", actor="t")
    person(registry, "fc", 1, "fr", "ana@example.org")
    logs.settle()
    outbox = logs.worker.transport()
    assert isinstance(outbox, OutboxTransport)
    assert outbox.folder == Path(logs.env["CAREPATH_DATA_DIR"]).resolve() / "outbox"
    assert logs.sender(outbox).sweep() == 3
    assert logs.sender(outbox).sweep() == 0  # a restart sends nothing twice
    files = sorted(outbox.folder.iterdir())
    assert len(files) == 3
    assert all(f.suffix == ".eml" for f in files)
    assert {f.stem for f in files} == {str(m) for m in _message_ids(logs.sender(outbox))}
    assert all(b"Content-Language: fr" in f.read_bytes() for f in files)


def test_a_replayed_batch_records_no_message_twice(logs: Logs) -> None:
    registry = logs.registry
    registry.define_intake(
        code="fc", name="Home care", stream="outside", capacity=5, policy="first_come", actor="t"
    )
    registry.open_intake("fc", actor="t")
    person(registry, "fc", 1, "en", "ana@example.org")
    logs.settle()
    notifications = Notifications(
        env=application_env(logs.env, Notifications.name, create_table=False)
    )
    try:
        before = notifications.recorder.max_notification_id()
        # When the same Registry events are offered again (a restart that lost its place)
        events = [
            (registry.mapper.to_domain_event(n), _tracking(n.id))
            for n in registry.recorder.select_notifications(0, 100, topics=notifications.topics)
        ]
        # Then the tracking record refuses the whole batch, and nothing new is recorded
        from eventsourcing.persistence import IntegrityError

        with pytest.raises(IntegrityError):
            notifications.process_batch(events)
        assert notifications.recorder.max_notification_id() == before
    finally:
        notifications.close()


def _tracking(position: int) -> Any:
    from eventsourcing.persistence import Tracking

    return Tracking(Registry.name, position)


def _message_ids(sender: Sender) -> list[UUID]:
    from eventsourcing.utils import get_topic

    from domain.notifications import Message

    found = sender.notifications.recorder.select_notifications(
        0, 1000, topics=[get_topic(Message.Recorded)]
    )
    return [n.originator_id for n in found]
