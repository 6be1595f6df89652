"""A PostgreSQL process recorder that writes without psycopg's pipeline mode.

The library's recorder sends its statements in one psycopg pipeline. With a very large insert
(a lottery's draw: about 45,000 ledger events, some 12 MB of parameters, in one transaction) the
pipeline stalls here: the server waits for the rest of the INSERT (ClientRead) while psycopg waits
for results, forever (seen with psycopg 3.3.9, C implementation, PostgreSQL 15; 20,000 events
passed, 45,000 hung every time; compare psycopg issue #685). Sending the same statements one after
another in the same transaction keeps every guarantee (table lock, NOTIFY, tracking row, one
commit) and costs a few loopback round trips per batch, which the allocator does not notice.

Selected for the Allocator with PROCESS_RECORDER_TOPIC (see persistence.application_env).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresProcessRecorder
from eventsourcing.utils import retry


class UnpipelinedPostgresProcessRecorder(PostgresProcessRecorder):
    """PostgresProcessRecorder.insert_events, statement by statement instead of pipelined."""

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._insert_events(curs, stored_events, **kwargs)  # the tracking row
            if not stored_events:
                return None
            self._insert_stored_events(curs, stored_events, **kwargs)  # lock, notify, insert
            ids: Sequence[int] | None = self._fetch_ids_after_insert_events(
                curs, stored_events, **kwargs
            )
            return ids
