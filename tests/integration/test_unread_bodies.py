"""A response sent without reading the whole body never costs gunicorn a thread.

With gthread, a kept-alive connection whose body the app left unread is taken by a thread that
discards the rest and then waits in recv() for a next request that an idle client never sends
(benoitc/gunicorn#3301). `web.request_body` reads the rest inside the request. Here one worker
with two threads answers two uploads it refuses unread (401: nobody signed in), their clients
keep their connections open and idle, and a third client must still get an answer; so must a
second request on each kept connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.servers import ServerProcess, carepath_env, run_carepath

pytestmark = pytest.mark.slow

BODY = b"%PDF-" + b"x" * (512 * 1024)  # far more than gunicorn's 8 KB read-ahead
THREADS = 2


@pytest.fixture
def server(postgres_db: dict[str, str], tmp_path: Path) -> Iterator[ServerProcess]:
    env = carepath_env({**postgres_db, "CAREPATH_DATA_DIR": str(tmp_path / "data")})
    run_carepath(env, "db", "init")
    process = ServerProcess.gunicorn(env, log_dir=tmp_path, workers=1, threads=THREADS)
    try:
        yield process.start()
    finally:
        process.stop()


def test_idle_clients_of_refused_uploads_hold_no_thread(server: ServerProcess) -> None:
    idle = [requests.Session() for _ in range(THREADS)]
    try:
        for session in idle:
            refused = session.put(
                server.url("/api/v1/case/documents/items/identity"),
                data=BODY,
                headers={"Idempotency-Key": "k" * 24, "Upload-Filename": "id.pdf"},
                timeout=30,
            )
            assert refused.status_code == 401, refused.text
            assert "error" in refused.json()
        # both clients now sit on their open connections; a third one is still served
        fresh = requests.get(server.url("/healthz"), timeout=15)
        assert fresh.status_code == 200
        # and the kept connections still carry a next request
        for session in idle:
            assert session.get(server.url("/healthz"), timeout=15).status_code == 200
    finally:
        for session in idle:
            session.close()
