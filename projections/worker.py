"""The worker: the allocator and the read models, following their logs in order.

The allocator and the casework view follow the Registry's log; the allocation view follows the
Allocator's; the notifier follows both, and its sender hands the recorded messages over (SMTP or
the outbox folder), never from a web request.

Run as its own process (`carepath worker`) or as threads of the embedded server. Only one worker
is active per database; a second one waits as a standby.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from domain.allocator import FOLLOWED as ALLOCATOR_FOLLOWED
from domain.allocator import Allocator
from domain.checkpoints import Checkpoints, load_signer
from domain.evidence import salt_key
from domain.intake import Intake
from domain.mailer import Compose, OutboxTransport, Sender, SmtpTransport, Transport
from domain.notifications import Notifications
from domain.registry import Registry
from domain.staff import Staff
from projections.allocation import AllocationView
from projections.casework import CaseworkView
from projections.locks import single_instance
from projections.persistence import (
    application_env,
    audit_key_file,
    audit_origin,
    checkpoint_every,
    outbox_dir,
)
from projections.runner import BATCH, catch_up, run_supervised, select_after
from projections.tree import LogReader, TreeFollower, follow_trees, sign_due
from projections.views import make_engine

log = logging.getLogger(__name__)

ALLOCATOR_FOLLOWS = tuple(ALLOCATOR_FOLLOWED)
# The logs whose Merkle trees the worker keeps (the Checkpoints log itself is signed, not hashed).
LOGS = (Registry.name, Allocator.name, Notifications.name, Staff.name)
NOTIFY_POLL_SECONDS = 0.2
SEND_POLL_SECONDS = 0.5


class Worker:
    """Builds its own applications per follower thread (each with its own connections).

    With `compose` (web.letters.Letters: the text of each email) it also runs the notifier and
    its sender; without, it records and sends no notifications.
    """

    def __init__(
        self, environ: Mapping[str, str], secret: bytes, compose: Compose | None = None
    ) -> None:
        self.environ = dict(environ)
        self.secret = secret
        self.compose = compose

    def registry(self) -> Registry:
        """The Registry as the worker uses it: only read, so without a group-commit writer."""
        env = application_env(self.environ, Registry.name, create_table=False)
        env[f"{Registry.name.upper()}_GROUP_COMMIT"] = "n"
        return Registry(env=env, secret=self.secret)

    def allocator(self) -> Allocator:
        return Allocator(env=application_env(self.environ, Allocator.name, create_table=False))

    def notifications(self) -> Notifications:
        env = application_env(self.environ, Notifications.name, create_table=False)
        return Notifications(env=env)

    def checkpoints(self) -> Checkpoints:
        """The Checkpoints application with the signing key (made on first use)."""
        signer = load_signer(audit_key_file(self.environ), audit_origin(self.environ), create=True)
        env = application_env(self.environ, Checkpoints.name, create_table=False)
        return Checkpoints(env=env, signer=signer)

    def tree_followers(self, engine: Any) -> list[TreeFollower]:
        key, every = salt_key(self.secret), checkpoint_every(self.environ)
        return [
            TreeFollower(
                engine,
                LogReader(name, application_env(self.environ, name, create_table=False)),
                key,
                every,
            )
            for name in LOGS
        ]

    def _run_trees(self, stop: threading.Event) -> None:
        engine, checkpoints = make_engine(self.environ), self.checkpoints()
        followers = self.tree_followers(engine)
        try:
            follow_trees(followers, checkpoints, stop)
        finally:
            for follower in followers:
                follower.app.close()
            checkpoints.close()
            engine.dispose()

    def settle_trees(self) -> int:
        """Bring every log's tree up to date and sign what it asked for; returns events added."""
        engine, checkpoints = make_engine(self.environ), self.checkpoints()
        followers = self.tree_followers(engine)
        try:
            added = sum(follower.catch_up() for follower in followers)
            sign_due(engine, checkpoints)
        finally:
            for follower in followers:
                follower.app.close()
            checkpoints.close()
            engine.dispose()
        return added

    def transport(self) -> Transport:
        """SMTP at CAREPATH_SMTP_URL, else the outbox folder under the data dir."""
        url = self.environ.get("CAREPATH_SMTP_URL")
        return SmtpTransport.from_url(url) if url else OutboxTransport(outbox_dir(self.environ))

    def notify(self, registry: Registry, allocator: Allocator, notifier: Notifications) -> int:
        return record_notifications(registry, allocator, notifier)

    def _run_notifier(self, stop: threading.Event) -> None:
        registry, allocator, notifier = self.registry(), self.allocator(), self.notifications()
        try:
            while not stop.is_set():
                if not self.notify(registry, allocator, notifier):
                    stop.wait(NOTIFY_POLL_SECONDS)
        finally:
            registry.close()
            allocator.close()
            notifier.close()

    def sender(self, compose: Compose) -> Sender:
        return Sender(self.notifications(), self.registry(), compose, self.transport())

    def _run_sender(self, stop: threading.Event) -> None:
        assert self.compose is not None
        sender = self.sender(self.compose)
        try:
            while not stop.is_set():
                if not sender.sweep():
                    stop.wait(SEND_POLL_SECONDS)
        finally:
            sender.notifications.close()
            sender.registry.close()

    def _allocator_follower(self) -> tuple[Any, Any, list[Callable[[], None]]]:
        registry, allocator = self.registry(), self.allocator()
        return registry, allocator, [registry.close, allocator.close]

    def _view_follower(self) -> tuple[Any, Any, list[Callable[[], None]]]:
        allocator, engine = self.allocator(), make_engine(self.environ)
        return allocator, AllocationView(engine), [allocator.close, engine.dispose]

    def _casework_follower(self) -> tuple[Any, Any, list[Callable[[], None]]]:
        registry, engine = self.registry(), make_engine(self.environ)
        return registry, CaseworkView(engine), [registry.close, engine.dispose]

    def settle(self) -> tuple[int, int]:
        """Process everything already logged, once: (registry events read, ledger events read).

        The casework view's reading of the Registry's log is not counted: the first number is
        what the allocator read, as before.
        """
        registry, allocator = self.registry(), self.allocator()
        engine = make_engine(self.environ)
        try:
            decided = catch_up(registry, allocator)
            catch_up(registry, CaseworkView(engine))
            viewed = catch_up(allocator, AllocationView(engine))
        finally:
            registry.close()
            allocator.close()
            engine.dispose()
        if self.compose is not None:
            registry, allocator, notifier = self.registry(), self.allocator(), self.notifications()
            try:
                self.notify(registry, allocator, notifier)
            finally:
                registry.close()
                allocator.close()
                notifier.close()
        return decided, viewed

    def run(self, stop: threading.Event) -> None:
        """Follow until `stop` is set, holding the worker lock (waits for it as a standby)."""
        with single_instance(self.environ, "worker", stop) as held:
            if not held:
                return
            log.info("worker active")
            threads = [
                threading.Thread(
                    target=run_supervised,
                    args=(build, stop),
                    kwargs={"name": name},
                    name=name,
                    daemon=True,
                )
                for name, build in (
                    ("allocator", self._allocator_follower),
                    ("allocation-view", self._view_follower),
                    ("casework-view", self._casework_follower),
                )
            ]
            threads.append(
                threading.Thread(
                    target=_supervised_loop,
                    args=(self._run_trees, stop, "trees"),
                    name="trees",
                    daemon=True,
                )
            )
            if self.compose is not None:
                threads += [
                    threading.Thread(
                        target=_supervised_loop,
                        args=(body, stop, name),
                        name=name,
                        daemon=True,
                    )
                    for name, body in (
                        ("notifier", self._run_notifier),
                        ("sender", self._run_sender),
                    )
                ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()


def _supervised_loop(
    body: Callable[[threading.Event], None],
    stop: threading.Event,
    name: str,
    restart_seconds: float = 1.0,
) -> None:
    """Run `body(stop)` until `stop` is set, starting it again after any failure (it resumes
    from what it last recorded)."""
    while not stop.is_set():
        try:
            body(stop)
        except Exception:
            log.exception("%s failed; restarting in %.1f s", name, restart_seconds)
            stop.wait(restart_seconds)
        time.sleep(0)


def record_notifications(registry: Registry, allocator: Allocator, notifier: Notifications) -> int:
    """Record the messages of everything logged so far; returns how many events were read.

    An event of the Registry's log that the Allocator follows is read only once the
    Allocator has decided it, and the Allocator's log is read to its end before each
    deadline check: so a check is read after the offers it concerns, and a receipt comes
    before the invitation it led to."""
    decided = allocator.position(Registry.name)
    read = 0
    while True:
        after = notifier.position(Registry.name)
        items = select_after(registry, notifier, after, BATCH)
        waits = [
            i
            for i, (e, tracking) in enumerate(items)
            if isinstance(e, ALLOCATOR_FOLLOWS) and tracking.notification_id > decided
        ]
        items = items[: waits[0]] if waits else items
        if not items:
            break
        checks = [i for i, (e, _) in enumerate(items) if isinstance(e, Intake.DeadlinesChecked)]
        if checks and checks[0] == 0:
            read += catch_up(allocator, notifier)
            items = items[:1]
        elif checks:
            items = items[: checks[0]]
        notifier.process_batch(items)
        read += len(items)
    return read + catch_up(allocator, notifier)
