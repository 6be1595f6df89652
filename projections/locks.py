"""One active instance per database: a PostgreSQL advisory lock, or a file lock beside SQLite.

A standby process waits for the lock and takes over when the holder dies: PostgreSQL releases an
advisory lock when its session ends, the kernel releases a file lock when its process ends.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any

from projections.persistence import application_env, backend, data_dir

log = logging.getLogger(__name__)


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock."""
    return int.from_bytes(
        hashlib.sha256(f"carepath:{name}".encode()).digest()[:8], "big", signed=True
    )


@contextmanager
def single_instance(
    environ: Mapping[str, str], name: str, stop: threading.Event, *, retry_seconds: float = 1.0
) -> Iterator[bool]:
    """Hold the named lock for the body; yields False if `stop` was set before it was acquired."""
    if backend(environ) == "postgres":
        with _postgres_lock(environ, name, stop, retry_seconds) as held:
            yield held
    else:
        with _file_lock(environ, name, stop, retry_seconds) as held:
            yield held


@contextmanager
def _file_lock(
    environ: Mapping[str, str], name: str, stop: threading.Event, retry_seconds: float
) -> Iterator[bool]:
    folder = data_dir(environ)
    folder.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = open(folder / f"{name}.lock", "a")  # noqa: SIM115 - held for the body
    try:
        while not stop.is_set():
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("another %s holds the lock; waiting", name)
                stop.wait(retry_seconds)
                continue
            yield True
            return
        yield False
    finally:
        handle.close()


@contextmanager
def _postgres_lock(
    environ: Mapping[str, str], name: str, stop: threading.Event, retry_seconds: float
) -> Iterator[bool]:
    import psycopg

    env = application_env(environ, "Locks", create_table=False)
    connection: Any = psycopg.connect(
        dbname=env["POSTGRES_DBNAME"],
        host=env["POSTGRES_HOST"],
        port=env["POSTGRES_PORT"],
        user=env["POSTGRES_USER"],
        password=env.get("POSTGRES_PASSWORD", ""),
        autocommit=True,
        connect_timeout=10,
    )
    try:
        while not stop.is_set():
            acquired = connection.execute(
                "SELECT pg_try_advisory_lock(%s)", (lock_key(name),)
            ).fetchone()[0]
            if acquired:
                yield True
                return
            log.info("another %s holds the lock; waiting", name)
            stop.wait(retry_seconds)
        yield False
    finally:
        connection.close()  # ends the session, which releases the lock
