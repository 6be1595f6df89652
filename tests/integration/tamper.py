"""Tampering with a stored log directly in its database, and undoing it: one byte flipped, one
event deleted, one inserted (the later ones renumbered to make room, as an intruder must to put it
in the past), two swapped. Used by tests/integration/test_tamper_evidence.py and
bench/tamper_trials.py."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KINDS = ("flip", "delete", "insert", "swap")


@dataclass
class Tampering:
    kind: str
    notification_ids: tuple[int, ...]  # where the change was made (its first position first)
    undo: Callable[[], None]


class StoredLog:
    """Rows of one application's events table, by notification id."""

    def __init__(self, execute: Callable[..., list[Any]], table: str, id_column: str) -> None:
        self.execute = execute
        self.table = table
        self.id = id_column

    @classmethod
    @contextmanager
    def open(cls, env: dict[str, str], app_name: str) -> Iterator[StoredLog]:
        if env.get("PERSISTENCE_MODULE") == "eventsourcing.postgres":
            import psycopg

            with psycopg.connect(
                host=env["POSTGRES_HOST"],
                port=env["POSTGRES_PORT"],
                user=env["POSTGRES_USER"],
                dbname=env["POSTGRES_DBNAME"],
                autocommit=True,
            ) as connection:

                def run_pg(sql: str, *params: Any) -> list[Any]:
                    cursor = connection.execute(sql.replace("?", "%s"), params)
                    return list(cursor.fetchall()) if cursor.description else []

                yield cls(run_pg, f"{app_name.lower()}_events", "notification_id")
            return
        path = Path(env["CAREPATH_DATA_DIR"]) / f"{app_name.lower()}.sqlite"
        connection = sqlite3.connect(path, isolation_level=None, timeout=15)
        try:

            def run_sqlite(sql: str, *params: Any) -> list[Any]:
                return connection.execute(sql, params).fetchall()

            yield cls(run_sqlite, "stored_events", "rowid")
        finally:
            connection.close()

    def ids(self) -> list[int]:
        return [row[0] for row in self.execute(f"SELECT {self.id} FROM {self.table} ORDER BY 1")]

    def row(self, nid: int) -> tuple[Any, ...]:
        found = self.execute(
            f"SELECT originator_id, originator_version, topic, state FROM {self.table}"
            f" WHERE {self.id} = ?",
            nid,
        )
        return tuple(found[0])

    def put(self, nid: int, row: tuple[Any, ...]) -> None:
        self.execute(
            f"INSERT INTO {self.table} ({self.id}, originator_id, originator_version, topic, state)"
            " VALUES (?, ?, ?, ?, ?)",
            nid,
            *row,
        )

    def renumber(self, old: int, new: int) -> None:
        self.execute(f"UPDATE {self.table} SET {self.id} = ? WHERE {self.id} = ?", new, old)

    def shift(self, from_id: int, by: int) -> None:
        """Move every id >= from_id by `by`, through negative ids so no two collide."""
        self.execute(
            f"UPDATE {self.table} SET {self.id} = -{self.id} WHERE {self.id} >= ?", from_id
        )
        self.execute(f"UPDATE {self.table} SET {self.id} = -{self.id} + ? WHERE {self.id} < 0", by)

    # The four kinds of tampering, each with its undo.

    def flip(self, rng: random.Random, nid: int) -> Tampering:
        state = self.row(nid)[3]
        state = bytes(state)
        where = rng.randrange(len(state))
        changed = bytearray(state)
        changed[where] ^= rng.randrange(1, 256)
        self.execute(f"UPDATE {self.table} SET state = ? WHERE {self.id} = ?", bytes(changed), nid)

        def undo() -> None:
            self.execute(f"UPDATE {self.table} SET state = ? WHERE {self.id} = ?", state, nid)

        return Tampering("flip", (nid,), undo)

    def delete(self, rng: random.Random, nid: int) -> Tampering:
        row = self.row(nid)
        self.execute(f"DELETE FROM {self.table} WHERE {self.id} = ?", nid)
        return Tampering("delete", (nid,), lambda: self.put(nid, row))

    def insert(self, rng: random.Random, nid: int) -> Tampering:
        """A copy of some event (another version number, so the store takes it) put at `nid`."""
        originator_id, version, topic, state = self.row(rng.choice(self.ids()))
        self.shift(nid, 1)
        self.put(nid, (originator_id, version + 1_000_000, topic, state))

        def undo() -> None:
            self.execute(f"DELETE FROM {self.table} WHERE {self.id} = ?", nid)
            self.shift(nid + 1, -1)

        return Tampering("insert", (nid,), undo)

    def swap(self, rng: random.Random, nid: int) -> Tampering:
        others = [i for i in self.ids() if i != nid]
        other = rng.choice(others)
        first, second = sorted((nid, other))

        def exchange() -> None:
            self.renumber(first, -first)
            self.renumber(second, first)
            self.renumber(-first, second)

        exchange()
        return Tampering("swap", (first, second), exchange)

    def tamper(self, kind: str, rng: random.Random) -> Tampering:
        nid = rng.choice(self.ids())
        method: Callable[[random.Random, int], Tampering] = getattr(self, kind)
        return method(rng, nid)
