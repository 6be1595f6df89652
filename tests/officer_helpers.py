"""A worker running beside a test app, and a wait until every follower has caught up."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from projections.lag import lags
from projections.worker import Worker


@contextmanager
def running_worker(env: dict[str, str]) -> Iterator[None]:
    """`carepath worker`'s followers as threads of the test process, stopped afterwards."""
    stop = threading.Event()
    worker = threading.Thread(
        target=Worker(env, env["CAREPATH_SECRET"].encode()).run, args=(stop,), daemon=True
    )
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join(timeout=10)


def caught_up(app: Any, timeout: float = 15) -> None:
    """Wait until the allocator and every read model have processed every event they follow."""
    deadline = time.monotonic() + timeout
    while True:
        behind = [
            lag
            for lag in lags(
                app.extensions["carepath.registry"],
                app.extensions["carepath.allocator"],
                app.extensions["carepath.officer_queries"].positions(),
            )
            if lag.behind
        ]
        if not behind:
            return
        assert time.monotonic() < deadline, f"still behind: {behind}"
        time.sleep(0.05)
