"""Must-hold 2 of issue 11: `carepath worker` SIGKILLed while it records and sends notifications,
then restarted, delivers every message to a real SMTP server once, none lost (PostgreSQL).

"Once" is counted by Message-ID. A kill between the server's 250 and the Delivered event's commit
makes the next run send that one message again, with the same Message-ID (domain/mailer.py): so
each kill may repeat at most the one message in flight, which a receiver drops by its Message-ID.
"""

from __future__ import annotations

import random
import secrets
import time
from pathlib import Path

import pytest
from eventsourcing.utils import get_topic

from domain.allocator import Allocator
from domain.mailer import message_id_header
from domain.notifications import Message, Notifications
from domain.registry import Registry
from projections.persistence import application_env
from tests.integration.daemons import Daemon
from tests.integration.seed import seed_submitted
from tests.integration.servers import carepath_env, run_carepath
from tests.mail_server import SmtpSink

pytestmark = pytest.mark.slow

INTAKE = "kill-mail"
CAPACITY = 100
BACKLOG = 150  # cases queued before each start: 3 messages each
KILLS = 3
TIMEOUT = 90.0
DOMAIN = "carepath.invalid"  # of the default sender address


def test_a_worker_killed_while_sending_delivers_every_message_once_after_restart(
    postgres_db: dict[str, str], tmp_path: Path
) -> None:
    seed = secrets.randbits(32)
    print(f"seed={seed}")
    rng = random.Random(seed)
    secret = postgres_db["CAREPATH_SECRET"].encode()
    with SmtpSink(delay=0.01) as sink:
        env = carepath_env(postgres_db, CAREPATH_SMTP_URL=sink.url)
        run_carepath(env, "db", "init")
        run_carepath(
            env, "intake", "create", "--code", INTAKE, "--name", "Kill", "--capacity",
            str(CAPACITY),
        )  # fmt: skip
        run_carepath(env, "intake", "open", INTAKE)
        registry = Registry(
            env=application_env(postgres_db, Registry.name, create_table=False), secret=secret
        )
        allocator = Allocator(env=application_env(postgres_db, Allocator.name, create_table=False))
        notifications = Notifications(
            env=application_env(postgres_db, Notifications.name, create_table=False)
        )
        worker = Daemon.worker(env, log_dir=tmp_path)
        next_n, mid_batch = 0, 0
        try:
            for _ in range(KILLS):
                # Given a backlog of submitted registrations, each owed three messages
                seed_submitted(registry, secret, INTAKE, BACKLOG, start=next_n, batch=50)
                next_n += BACKLOG
                before = sink.count
                # When the worker is killed after it has sent some of them
                worker.start()
                deadline = time.monotonic() + TIMEOUT
                target = before + rng.randint(5, BACKLOG)
                while sink.count < target:
                    assert time.monotonic() < deadline, worker.tail()
                    assert worker.running, worker.tail()
                    time.sleep(0.005)
                assert f"emails: sent through {sink.url}" in worker.current_log()
                worker.kill()
                mid_batch += len(recorded(notifications)) > len(sink.by_message_id())
            assert worker.exit_codes == [-9] * KILLS
            assert mid_batch >= 2, "the kills did not land while messages were still to send"

            # And restarted until every message owed is recorded and sent
            expected = KILLS * BACKLOG * 3
            worker.start()
            deadline = time.monotonic() + TIMEOUT
            while len(recorded(notifications)) < expected or len(sink.by_message_id()) < expected:
                assert time.monotonic() < deadline, (len(sink.by_message_id()), worker.tail())
                assert worker.running, worker.tail()
                time.sleep(0.1)
            time.sleep(1.0)  # anything more it would send
            worker.stop()
            assert worker.exit_codes[-1] == 0, worker.tail()
            assert "Traceback" not in worker.log_text(), worker.tail()

            # Then every recorded message reached the server, by its Message-ID, and is Delivered
            ids = recorded(notifications)
            assert len(ids) == expected
            received = sink.by_message_id()
            assert set(received) == {message_id_header(i, DOMAIN) for i in ids}
            assert {notifications.get_message(i).state for i in ids} == {"delivered"}
            # And a message was sent twice only for a kill between the 250 and its record
            repeated = sum(len(copies) - 1 for copies in received.values())
            print(f"messages={expected} received={sink.count} repeated={repeated}")
            assert repeated <= KILLS
            kinds = sorted(str(m["X-Carepath-Kind"]) for m in sink.messages)
            assert kinds.count("invitation") >= CAPACITY
        finally:
            worker.stop(grace=0)
            notifications.close()
            allocator.close()
            registry.close()


def recorded(notifications: Notifications) -> list[object]:
    found = notifications.recorder.select_notifications(
        0, 100_000, topics=[get_topic(Message.Recorded)]
    )
    return [n.originator_id for n in found]
