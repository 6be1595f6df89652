"""Group commit: saves from concurrent requests gathered into one transaction.

The PostgreSQL recorder takes an exclusive lock on the events table and commits once per save, so
one save per request caps a process at a few hundred durable writes per second, most of it
per-transaction overhead. Here each request hands its events to one writer thread and waits; the
writer takes whatever has queued up (up to `max_batch` requests, lingering at most `max_wait` for
more) and writes it all with one `Application.save`, one lock, one commit. A request is answered
only after the transaction holding its events has committed, so durability is unchanged.

When the batch is refused because one request conflicts (the same person twice, a stale version:
IntegrityError), the writer saves each request of the batch on its own, so only the offender
fails. Any other error (the database is down) fails every request of the batch, none of which
was written. Written here, not taken from a library: the batching must happen inside
eventsourcing's own `save` to keep its lock and its gap-free notification order.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import IntegrityError, Recording

Writer = Callable[..., list[Recording[Any]]]


class CommitTimeout(Exception):
    """Raised when a save was not confirmed in time; it may still commit (retry with its key)."""


@dataclass
class _Pending:
    events: Sequence[Any]
    done: threading.Event = field(default_factory=threading.Event)
    recordings: list[Recording[Any]] | None = None
    error: BaseException | None = None


class GroupCommitter:
    """One writer thread that turns many requests' saves into few transactions."""

    def __init__(
        self,
        write: Writer,
        *,
        max_batch: int = 100,
        max_wait: float = 0.002,
        timeout: float = 30.0,
        name: str = "group-commit",
    ) -> None:
        self._write = write
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.timeout = timeout
        self._queue: deque[_Pending] = deque()
        self._ready = threading.Condition()
        self._closed = False
        self.batches = 0
        self.saves = 0
        self._last_batch = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def save(self, events: Sequence[Any]) -> list[Recording[Any]]:
        """Write the events in the next batch; return their recordings once committed."""
        pending = _Pending(events)
        with self._ready:
            if self._closed:
                raise RuntimeError("the group committer is closed")
            self._queue.append(pending)
            self._ready.notify()
        if not pending.done.wait(self.timeout):
            raise CommitTimeout(f"no commit confirmed within {self.timeout} s")
        if pending.error is not None:
            raise pending.error
        assert pending.recordings is not None
        return pending.recordings

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify()
        self._thread.join(timeout=self.timeout)

    def _take(self) -> list[_Pending]:
        with self._ready:
            while not self._queue and not self._closed:
                self._ready.wait()
            if not self._queue:
                return []
            # Linger for company only while requests are arriving together (the last batch had
            # more than one): a lone request is written at once, at no extra latency.
            linger_until = time.monotonic() + (self.max_wait if self._last_batch > 1 else 0)
            while len(self._queue) < self.max_batch and not self._closed:
                left = linger_until - time.monotonic()
                if left <= 0:
                    break
                self._ready.wait(left)
            batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            self._last_batch = len(batch)
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take()
            if not batch:
                return
            self._commit(batch)

    def _commit(self, batch: list[_Pending]) -> None:
        try:
            recordings = self._write(*[event for pending in batch for event in pending.events])
        except IntegrityError as conflict:
            if len(batch) == 1:
                self._finish(batch[0], error=conflict)
                return
            for pending in batch:  # find the offender: each request alone
                self._commit([pending])
            return
        except BaseException as error:  # noqa: BLE001 - handed to every waiting request
            for pending in batch:
                self._finish(pending, error=error)
            return
        self.batches += 1
        self.saves += len(batch)
        position = 0
        for pending in batch:
            count = len(pending.events)
            self._finish(pending, recordings=recordings[position : position + count])
            position += count

    @staticmethod
    def _finish(
        pending: _Pending,
        recordings: list[Recording[Any]] | None = None,
        error: BaseException | None = None,
    ) -> None:
        pending.recordings, pending.error = recordings, error
        pending.done.set()
