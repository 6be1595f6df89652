"""APScheduler wiring: the jobs every few seconds, in one scheduler per database; the rescan of
documents waiting for the virus scanner every minute, the collection of orphaned blobs hourly."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from domain.beacon import HttpBeacon
from domain.blobs import FilesystemBlobStore
from domain.documents import Documents
from domain.inspection import ContentInspector
from domain.registry import Registry
from domain.scanning import ClamdScanner
from projections.allocation import AllocationQueries
from projections.documents import CaughtUp, DocumentQueries, grace_period
from projections.locks import single_instance
from projections.persistence import application_env, clamd_url, documents_dir
from projections.views import make_engine
from scheduler import jobs

log = logging.getLogger(__name__)


def beacon_client(environ: Mapping[str, str]) -> HttpBeacon:
    """drand's HTTP API, or a relay or mirror of it (CAREPATH_BEACON_URL)."""
    return HttpBeacon(environ.get("CAREPATH_BEACON_URL", "https://api.drand.sh"))


def _now() -> datetime:
    return datetime.now(UTC)


def run(
    environ: Mapping[str, str],
    secret: bytes,
    stop: threading.Event,
    *,
    interval_seconds: float = 5.0,
    rescan_seconds: float = 60.0,
    collect_seconds: float = 3600.0,
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
        documents = _documents(environ, registry, allocations)
        document_queries = DocumentQueries(engine)
        grace = grace_period(environ)
        calls: list[tuple[Callable[..., Any], tuple[Any, ...], float]] = [
            (jobs.open_due_intakes, (registry,), interval_seconds),
            (jobs.close_due_intakes, (registry,), interval_seconds),
            (jobs.draw_due_lotteries, (registry, beacon_client(environ)), interval_seconds),
            (jobs.close_full_intakes, (registry, allocations), interval_seconds),
            (jobs.expire_overdue_offers, (registry, allocations), interval_seconds),
            (jobs.rescan_pending_documents, (documents, document_queries), rescan_seconds),
            (
                partial(jobs.collect_documents, grace=grace),
                (documents.store, document_queries, CaughtUp(engine, registry)),
                collect_seconds,
            ),
        ]
        scheduler = BackgroundScheduler(timezone=UTC)
        for job, args, seconds in calls:
            scheduler.add_job(
                _guarded(job, args, clock),
                "interval",
                seconds=seconds,
                id=_name(job),
                max_instances=1,
                coalesce=True,
                next_run_time=clock(),
            )
        scheduler.start()
        log.info(
            "scheduler active: %d jobs (intakes every %.0f s, rescans every %.0f s, "
            "collection every %.0f s, grace %s)",
            len(calls),
            interval_seconds,
            rescan_seconds,
            collect_seconds,
            grace,
        )
        try:
            stop.wait()
        finally:
            scheduler.shutdown(wait=True)
            registry.close()
            engine.dispose()


def _documents(environ: Mapping[str, str], registry: Registry, offers: Any) -> Documents:
    """The documents service as the scheduler uses it: the web's blob store and scanner."""
    url = clamd_url(environ)
    return Documents(
        registry,
        FilesystemBlobStore(documents_dir(environ)),
        ContentInspector(),
        offers,
        scanner=ClamdScanner.from_url(url) if url else None,
    )


def _name(job: Callable[..., Any]) -> str:
    return str(job.func.__name__ if isinstance(job, partial) else job.__name__)


def _guarded(
    job: Callable[..., Any], args: tuple[Any, ...], clock: Callable[[], datetime]
) -> Callable[[], None]:
    name = _name(job)

    def call() -> None:
        try:
            job(*args, clock())
        except Exception:  # a failed run is logged and tried again at the next interval
            log.exception("job %s failed", name)

    call.__name__ = name
    return call
