"""`carepath notifications list|retry`, in-process with click's runner on a fresh SQLite folder,
with the worker's sender delivering to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

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

    def invoke(*args: str) -> Any:
        return runner.invoke(cli, list(args), catch_exceptions=False)

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
