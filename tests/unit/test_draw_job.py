"""The scheduler's draw job against a beacon served over real HTTP on this machine."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import eventsourcing.domain
import pytest

from domain.beacon import QUICKNET, QUICKNET_SAMPLE, HttpBeacon
from domain.registry import Registry
from scheduler.jobs import draw_due_lotteries
from tests.conftest import SECRET, submit_person
from tests.unit.test_draw import CLOSES, ROUND_TIME, Clock

POPO = {"PERSISTENCE_MODULE": "eventsourcing.popo"}


class Beacon(BaseHTTPRequestHandler):
    published = False
    requests: list[str] = []  # noqa: RUF012 - one server per test, reset by the fixture

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        if not type(self).published:
            self.send_response(425)
            self.end_headers()
            return
        body = json.dumps(QUICKNET_SAMPLE.as_dict()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def beacon() -> Iterator[HttpBeacon]:
    Beacon.published, Beacon.requests = False, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Beacon)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield HttpBeacon(f"http://127.0.0.1:{server.server_address[1]}")
    server.shutdown()
    server.server_close()


def test_the_job_waits_for_the_round_then_draws_once(beacon, monkeypatch):
    clock = Clock(CLOSES - timedelta(hours=1))
    monkeypatch.setattr(eventsourcing.domain, "datetime_now_with_tzinfo", clock)
    registry = Registry(env=POPO, secret=SECRET, clock=clock)
    registry.define_intake(
        code="job",
        name="job",
        stream="",
        capacity=2,
        policy="lottery",
        closes_at=CLOSES,
        actor="t",
    )
    registry.open_intake("job", actor="t", beacon="drand-quicknet")
    for n in range(4):
        submit_person(registry, "job", n)
    clock.now = CLOSES
    registry.close_intake("job", actor="t")

    assert draw_due_lotteries(registry, beacon, ROUND_TIME - timedelta(seconds=1)) == []
    assert Beacon.requests == []  # not due: the beacon is not even asked
    assert draw_due_lotteries(registry, beacon, ROUND_TIME) == []  # due, not published yet
    assert Beacon.requests == [f"/{QUICKNET.chain_hash}/public/{QUICKNET_SAMPLE.round}"]
    Beacon.published = True
    assert draw_due_lotteries(registry, beacon, ROUND_TIME + timedelta(seconds=3)) == ["job"]
    inputs = registry.get_intake("job").draw_inputs
    assert inputs["round"] == QUICKNET_SAMPLE.round
    assert inputs["randomness"] == QUICKNET_SAMPLE.randomness
    assert draw_due_lotteries(registry, beacon, ROUND_TIME + timedelta(seconds=6)) == []
    registry.close()
