"""Followers: feed a log's new events, in order and in batches, to a processor that records them
together with its position. Used for the allocator and for every read model.

Two ways to learn of new events. On PostgreSQL the library's subscription (LISTEN/NOTIFY with
catch-up, `ApplicationSubscription`) feeds a bounded queue; on SQLite and in memory, which have no
subscription, the follower polls `select_notifications` after its last position. Either way the
processor takes what has queued up as one batch, so under a surge one transaction carries many
decisions instead of one.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

from eventsourcing.application import Application
from eventsourcing.persistence import Tracking
from eventsourcing.projection import ApplicationSubscription

log = logging.getLogger(__name__)

BATCH = 500
POLL_SECONDS = 0.05
# After the first new event, wait this long for company before processing: under a surge every
# web commit notifies the follower, and one transaction per few events cost the worker a sixth
# of a core at 300 requests/s. Adds at most this much to the projection lag.
LINGER_SECONDS = 0.05


class Processor(Protocol):
    """Anything that records a batch of events with the position of the last, atomically."""

    @property
    def name(self) -> str: ...

    @property
    def topics(self) -> Sequence[str]: ...

    def position(self, source_name: str) -> int: ...

    def process_batch(self, items: Sequence[tuple[Any, Tracking]]) -> int: ...


def catch_up(
    source: Application[Any],
    processor: Processor,
    *,
    batch: int = BATCH,
    until: int | None = None,
) -> int:
    """Process everything already in the source's log (up to position `until`, if given);
    returns how many events were read."""
    total = 0
    while True:
        items = select_after(source, processor, processor.position(source.name), batch, until)
        if not items:
            return total
        processor.process_batch(items)
        total += len(items)


def select_after(
    source: Application[Any],
    processor: Processor,
    after: int,
    limit: int,
    until: int | None = None,
) -> list[tuple[Any, Tracking]]:
    if until is not None and until <= after:
        return []
    notifications = source.recorder.select_notifications(
        start=after, limit=limit, stop=until, topics=processor.topics, inclusive_of_start=False
    )
    return [(source.mapper.to_domain_event(n), Tracking(source.name, n.id)) for n in notifications]


def uses_subscription(source: Application[Any]) -> bool:
    return type(source.recorder).__module__.startswith("eventsourcing.postgres")


def follow(
    source: Application[Any],
    processor: Processor,
    stop: threading.Event,
    *,
    batch: int = BATCH,
    poll_seconds: float = POLL_SECONDS,
) -> None:
    """Process the source's events until `stop` is set; errors propagate to the caller."""
    if uses_subscription(source):
        _follow_subscription(source, processor, stop, batch, LINGER_SECONDS)
    else:
        _follow_polling(source, processor, stop, batch, poll_seconds)


def _follow_polling(
    source: Application[Any],
    processor: Processor,
    stop: threading.Event,
    batch: int,
    poll_seconds: float,
) -> None:
    position = processor.position(source.name)
    while not stop.is_set():
        items = select_after(source, processor, position, batch)
        if items:
            processor.process_batch(items)
            position = items[-1][1].notification_id
        else:
            stop.wait(poll_seconds)


_END = object()


def _follow_subscription(
    source: Application[Any],
    processor: Processor,
    stop: threading.Event,
    batch: int,
    linger: float,
) -> None:
    inbox: queue.Queue[Any] = queue.Queue(maxsize=batch * 4)
    subscription = ApplicationSubscription(
        app=source, gt=processor.position(source.name), topics=processor.topics
    )

    def read() -> None:
        try:
            for item in subscription:
                inbox.put(item)
        except BaseException as error:  # noqa: BLE001 - handed to the processing thread, which raises it
            inbox.put(error)
        finally:
            inbox.put(_END)

    reader = threading.Thread(target=read, name=f"{processor.name}-subscription", daemon=True)
    reader.start()
    try:
        while not stop.is_set():
            try:
                first = inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            items = []
            item = first
            gather_until = time.monotonic() + linger
            while True:
                if item is _END:
                    raise RuntimeError(f"the subscription of {processor.name} ended")
                if isinstance(item, BaseException):
                    raise item
                items.append(item)
                if len(items) >= batch:
                    break
                try:
                    item = inbox.get(timeout=max(0.0, gather_until - time.monotonic()))
                except queue.Empty:
                    break
            processor.process_batch(items)
    finally:
        subscription.stop()


def run_supervised(
    build: Any, stop: threading.Event, *, name: str, restart_seconds: float = 1.0
) -> None:
    """Run `build()` -> (source, processor, closer) and follow, rebuilding after any failure.

    A follower that fails (a lost connection, a crash in a decision) starts again from its last
    committed position, which is what makes its effects exactly-once.
    """
    while not stop.is_set():
        closers: list[Any] = []
        try:
            source, processor, closers = build()
            log.info("%s following %s from %s", name, source.name, processor.position(source.name))
            follow(source, processor, stop)
        except Exception:
            log.exception("%s failed; restarting in %.1f s", name, restart_seconds)
            stop.wait(restart_seconds)
        finally:
            for close in closers:
                try:
                    close()
                except Exception:
                    log.debug("closing %s failed", name, exc_info=True)
        time.sleep(0)
