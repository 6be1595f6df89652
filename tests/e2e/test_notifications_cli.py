"""`carepath notifications list|retry`, in-process with click's runner on a fresh SQLite folder,
with the worker's sender delivering to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

from datetime import timedelta
from email import policy
from email.message import EmailMessage, Message
from typing import Any
from uuid import UUID

import pytest
from click.testing import CliRunner

from carepath.cli import cli
from domain.mailer import Sender, SmtpTransport
from domain.notifications import Notifications
from domain.registry import Registry
from projections.persistence import application_env
from projections.worker import Worker
from tests.conftest import submit_person
from tests.mail_server import SmtpSink
from web.settings import Settings


@pytest.fixture
def run(sqlite_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    for key in ("PERSISTENCE_MODULE", "POSTGRES_DBNAME", "CAREPATH_VIEWS_URL", "CAREPATH_SMTP_URL"):
        monkeypatch.delenv(key, raising=False)
    runner = CliRunner(env=sqlite_env)

    def invoke(*args: str, input: bytes | None = None) -> Any:
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    assert invoke("db", "init").exit_code == 0
    return invoke


def test_rejected_messages_are_listed_and_sent_again_after_a_retry(
    run: Any, sqlite_env: dict[str, str]
) -> None:
    # Given three messages for one applicant, refused by the server at RCPT with a 550
    assert run("intake", "create", "--code", "tst", "--name", "T", "--capacity", "5").exit_code == 0
    assert run("intake", "open", "tst").exit_code == 0
    secret = sqlite_env["CAREPATH_SECRET"].encode()
    registry = Registry(
        env=application_env(sqlite_env, "Registry", create_table=False), secret=secret
    )
    notifications = Notifications(
        env=application_env(sqlite_env, "Notifications", create_table=False)
    )
    try:
        submit_person(registry, "tst", 1)
        letters = Settings.from_environ({"ENV": sqlite_env}).letters()
        Worker(sqlite_env, secret, letters).settle()
        with SmtpSink() as sink:
            sink.refused_recipients.add("a@example.org")
            sender = Sender(notifications, registry, letters, SmtpTransport.from_url(sink.url))
            assert sender.sweep() == 3
            listed = run("notifications", "list", "--state", "rejected")
            assert listed.exit_code == 0
            assert listed.output.count("550") == 3
            assert "0 pending, 0 delivered, 3 rejected, 0 abandoned" in listed.output
            # When the operator fixes the mailbox and asks for them to be tried again
            sink.refused_recipients.clear()
            retried = run("notifications", "retry", "--all-rejected")
            assert retried.exit_code == 0, retried.output
            assert "3 message(s) requeued" in retried.output
            # Then the sender delivers them, once each
            assert sender.sweep() == 3
            assert len(sink.by_message_id()) == 3
            assert sender.sweep() == 0
        shown = run("notifications", "status").output
        assert "messages: 0 pending, 3 delivered, 0 rejected, 0 abandoned" in shown
        head = registry.recorder.max_notification_id()
        assert f"Registry {head} {head}" in " ".join(shown.split())
        listed = run("notifications", "list", "--kind", "invitation")
        assert "0 pending, 3 delivered, 0 rejected, 0 abandoned" in listed.output
        assert listed.output.count(" invitation ") == 1
        delivered = listed.output.splitlines()[1].split()[0]
        again = run("notifications", "retry", delivered)
        assert again.exit_code == 1
        assert "is delivered" in again.output
        unknown = run("notifications", "retry", "00000000-0000-0000-0000-000000000000")
        assert unknown.exit_code == 1
        assert "no message" in unknown.output
        assert run("notifications", "retry", "nope").exit_code == 2
    finally:
        notifications.close()
        registry.close()


def test_skipping_the_history_sends_nothing_for_it_but_still_reminds_of_open_offers(
    run: Any, sqlite_env: dict[str, str]
) -> None:
    # Given a database whose intake has an invited applicant from before notifications
    assert run("intake", "create", "--code", "old", "--name", "O", "--capacity", "1").exit_code == 0
    assert run("intake", "open", "old").exit_code == 0
    secret = sqlite_env["CAREPATH_SECRET"].encode()
    registry = Registry(
        env=application_env(sqlite_env, "Registry", create_table=False), secret=secret
    )
    notifications = Notifications(
        env=application_env(sqlite_env, "Notifications", create_table=False)
    )
    try:
        case_id = submit_person(registry, "old", 1)
        Worker(sqlite_env, secret).settle()  # the allocator invites; no notifier yet
        # When the operator skips the history
        skipped = run("notifications", "skip-history")
        assert skipped.exit_code == 0, skipped.output
        assert "skipped" in skipped.output
        letters = Settings.from_environ({"ENV": sqlite_env}).letters()
        worker = Worker(sqlite_env, secret, letters)
        worker.settle()
        # Then nothing was recorded for the past
        assert notifications.message_ids(limit=10) == []
        # But the offer still open is reminded of a day before its deadline
        submitted = registry.get_case(case_id).submitted_at
        assert submitted is not None
        registry.check_deadlines("old", submitted + timedelta(days=27, hours=12), actor="t")
        worker.settle()
        ((_, only),) = notifications.message_ids(limit=10)
        view = notifications.view_message(only)
        assert (view.kind, view.case_id) == ("reminder", case_id)
        # And skipping again is refused: the notifier has read the logs
        again = run("notifications", "skip-history")
        assert again.exit_code == 1
        assert "already read" in again.output
    finally:
        notifications.close()
        registry.close()


def delivery_report(original: Any, action: str = "failed", *, headers_only: bool = False) -> bytes:
    """A DSN as a relay sends one (RFC 3464): the human part, the status fields, the original."""
    report = EmailMessage()
    report["From"] = "Mail Delivery System <MAILER-DAEMON@relay.example.net>"
    report["To"] = str(original["From"])
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report.set_content("This is the mail system at host relay.example.net.\n")
    report.make_mixed()
    report.set_type("multipart/report")
    report.set_param("report-type", "delivery-status")
    status = Message()
    status.set_type("message/delivery-status")
    per_message, per_recipient = Message(), Message()
    per_message["Reporting-MTA"] = "dns; relay.example.net"
    per_recipient["Final-Recipient"] = f"rfc822; {original['To']}"
    per_recipient["Action"] = action
    per_recipient["Status"] = "5.1.1" if action == "failed" else "4.4.1"
    per_recipient["Diagnostic-Code"] = "smtp; 550 5.1.1 <a@example.org>: mailbox unknown"
    status.set_payload([per_message, per_recipient])
    report.attach(status)
    if headers_only:
        part = Message()
        part.set_type("text/rfc822-headers")
        part.set_payload("".join(f"{k}: {v}\n" for k, v in original.items()))
    else:
        part = Message()
        part.set_type("message/rfc822")
        part.set_payload([original])
    report.attach(part)
    return report.as_bytes(policy=policy.SMTP)


@pytest.mark.parametrize("headers_only", [False, True])
def test_a_bounce_report_is_recorded_once_and_the_message_can_be_sent_again(
    run: Any, sqlite_env: dict[str, str], headers_only: bool
) -> None:
    # Given a registration confirmation delivered to a real SMTP server
    assert run("intake", "create", "--code", "tst", "--name", "T", "--capacity", "5").exit_code == 0
    assert run("intake", "open", "tst").exit_code == 0
    secret = sqlite_env["CAREPATH_SECRET"].encode()
    registry = Registry(
        env=application_env(sqlite_env, "Registry", create_table=False), secret=secret
    )
    notifications = Notifications(
        env=application_env(sqlite_env, "Notifications", create_table=False)
    )
    try:
        case_id = submit_person(registry, "tst", 1)
        letters = Settings.from_environ({"ENV": sqlite_env}).letters()
        Worker(sqlite_env, secret, letters).settle()
        with SmtpSink() as sink:
            sender = Sender(notifications, registry, letters, SmtpTransport.from_url(sink.url))
            assert sender.sweep() == 3
            (original,) = [m for m in sink.messages if m["X-Carepath-Kind"] == "registration"]
        message_id = UUID(str(original["Message-ID"]).strip("<>").split("@")[0])
        events = notifications.recorder.max_notification_id()

        # When the relay's report that the mailbox does not exist is piped to the command
        report = delivery_report(original, headers_only=headers_only)
        recorded = run("notifications", "bounce", input=report)

        # Then the message is recorded as bounced, with the report's status and diagnostic
        assert recorded.exit_code == 0, recorded.output
        assert f"message {message_id} bounced (5.1.1 550 5.1.1" in recorded.output
        view = notifications.view_message(message_id)
        assert (view.state, view.case_id) == ("bounced", case_id)
        assert "5.1.1" in view.last_error
        assert notifications.recorder.max_notification_id() == events + 1
        listed = run("notifications", "list", "--state", "bounced")
        assert "2 delivered, 0 rejected, 0 abandoned, 1 bounced" in listed.output
        assert str(message_id) in listed.output
        # and the same report read again records nothing more
        again = run("notifications", "bounce", input=report)
        assert again.exit_code == 0
        assert "already recorded as bounced" in again.output
        assert notifications.recorder.max_notification_id() == events + 1
        # and a bounced message can be tried again once the address is fixed
        assert run("notifications", "retry", str(message_id)).exit_code == 0
        assert notifications.view_message(message_id).state == "pending"
    finally:
        notifications.close()
        registry.close()


def test_reports_that_are_not_bounces_of_our_messages_are_refused_by_name(
    run: Any, sqlite_env: dict[str, str], tmp_path: Any
) -> None:
    original = EmailMessage()
    original["From"], original["To"] = "carepath <noreply@carepath.example>", "a@example.org"
    original["Message-ID"] = f"<{UUID(int=7)}@carepath.example>"
    original.set_content("hello")
    cases = {
        b"Subject: hello\n\njust an email\n": "no message/delivery-status part",
        delivery_report(original): f"no message {UUID(int=7)}",
    }
    foreign = EmailMessage()
    foreign["From"], foreign["To"] = "x@example.com", "y@example.com"
    foreign["Message-ID"] = "<20261206.abc@elsewhere.example>"
    foreign.set_content("not ours")
    cases[delivery_report(foreign)] = "does not name a carepath message"
    for raw, said in cases.items():
        refused = run("notifications", "bounce", input=raw)
        assert refused.exit_code == 1, refused.output
        assert said in refused.output
        assert "Traceback" not in refused.output
    # a delay report is read, and nothing is recorded
    delayed = run("notifications", "bounce", input=delivery_report(original, "delayed"))
    assert delayed.exit_code == 0
    assert "the report says delayed" in delayed.output
    # a file that does not exist is named
    missing = run("notifications", "bounce", str(tmp_path / "nope.eml"))
    assert missing.exit_code == 2
    assert "nope.eml" in missing.output
