"""APScheduler wiring: the jobs every few seconds, in one scheduler per database."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from domain.registry import Registry
from projections.allocation import AllocationQueries
from projections.locks import single_instance
from projections.persistence import application_env
from projections.views import make_engine
from scheduler import jobs

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def run(
    environ: Mapping[str, str],
    secret: bytes,
    stop: threading.Event,
    *,
    interval_seconds: float = 5.0,
    clock: Callable[[], datetime] = _now,
) -> None:
    """Run the jobs until `stop` is set, holding the scheduler lock (a standby waits for it)."""
    with single_instance(environ, "scheduler", stop) as held:
        if not held:
            return
        registry = Registry(
            env=application_env(environ, Registry.name, create_table=False), secret=secret
        )
        engine = make_engine(environ)
        allocations = AllocationQueries(engine)
        calls: list[tuple[Callable[..., Any], tuple[Any, ...]]] = [
            (jobs.open_due_intakes, (registry,)),
            (jobs.close_due_intakes, (registry,)),
            (jobs.close_full_intakes, (registry, allocations)),
            (jobs.expire_overdue_offers, (registry, allocations)),
        ]
        scheduler = BackgroundScheduler(timezone=UTC)
        for job, args in calls:
            scheduler.add_job(
                _guarded(job, args, clock),
                "interval",
                seconds=interval_seconds,
                id=job.__name__,
                max_instances=1,
                coalesce=True,
                next_run_time=clock(),
            )
        scheduler.start()
        log.info("scheduler active: %d jobs every %.0f s", len(calls), interval_seconds)
        try:
            stop.wait()
        finally:
            scheduler.shutdown(wait=True)
            registry.close()
            engine.dispose()


def _guarded(
    job: Callable[..., Any], args: tuple[Any, ...], clock: Callable[[], datetime]
) -> Callable[[], None]:
    def call() -> None:
        try:
            job(*args, clock())
        except Exception:  # a failed run is logged and tried again at the next interval
            log.exception("job %s failed", job.__name__)

    call.__name__ = job.__name__
    return call
