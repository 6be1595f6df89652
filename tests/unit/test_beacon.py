"""drand quicknet rounds: the BLS check, the round clock, the chain record and the HTTP client."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from domain.beacon import (
    KNOWN_CHAINS,
    QUICKNET,
    QUICKNET_SAMPLE,
    BeaconError,
    Chain,
    HttpBeacon,
    Round,
    first_round_at_or_after,
    message,
    parse_round,
    round_time,
    verify,
)

SAMPLE_JSON: dict[str, object] = {
    "round": QUICKNET_SAMPLE.round,
    "randomness": QUICKNET_SAMPLE.randomness,
    "signature": QUICKNET_SAMPLE.signature,
}
# b -> 9 clears the sign flag (the third bit): the negated signature, a valid point of the
# subgroup, so only the pairing can refuse it.
NEGATED = "9" + QUICKNET_SAMPLE.signature[1:]
KNOWN_RANDOMNESS = "fc1873a13f3545aeade8401532ef5519920652eee6b0d2b19ca12643b87b3587"


def test_the_sample_round_verifies_and_gives_its_randomness() -> None:
    assert verify(QUICKNET, 657413, QUICKNET_SAMPLE.signature) == KNOWN_RANDOMNESS
    assert QUICKNET_SAMPLE.randomness == KNOWN_RANDOMNESS


def test_message_is_sha256_of_the_round_as_8_big_endian_bytes() -> None:
    assert message(657413) == hashlib.sha256(bytes.fromhex("00000000000a0805")).digest()


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(QUICKNET_SAMPLE.signature[:-1] + "a", id="last-digit-changed"),
        pytest.param(NEGATED, id="sign-bit-flipped"),
        pytest.param("c0" + "00" * 47, id="point-at-infinity"),
        pytest.param(QUICKNET_SAMPLE.signature[:-2], id="47-bytes"),
        pytest.param(QUICKNET_SAMPLE.signature + "00", id="49-bytes"),
        pytest.param(QUICKNET_SAMPLE.signature[:-1], id="odd-length"),
        pytest.param("zz" + QUICKNET_SAMPLE.signature[2:], id="not-hex"),
        pytest.param(" " + QUICKNET_SAMPLE.signature[1:], id="whitespace"),
    ],
)
def test_a_signature_that_is_not_the_rounds_is_refused(signature: str) -> None:
    with pytest.raises(BeaconError):
        verify(QUICKNET, QUICKNET_SAMPLE.round, signature)


def test_a_curve_point_outside_the_prime_order_subgroup_is_refused() -> None:
    outside = QUICKNET_SAMPLE.signature[:-1] + "a"  # on the curve, but not of order r
    with pytest.raises(BeaconError, match="prime-order subgroup"):
        verify(QUICKNET, QUICKNET_SAMPLE.round, outside)


def test_the_signature_of_one_round_does_not_verify_another() -> None:
    with pytest.raises(BeaconError, match="does not verify for round 657414"):
        verify(QUICKNET, 657414, QUICKNET_SAMPLE.signature)


def test_an_unsupported_scheme_is_refused() -> None:
    chained = replace(QUICKNET, scheme="pedersen-bls-chained")
    with pytest.raises(BeaconError, match="unsupported scheme"):
        verify(chained, QUICKNET_SAMPLE.round, QUICKNET_SAMPLE.signature)


def test_parse_round_gives_the_verified_round() -> None:
    assert parse_round(QUICKNET, SAMPLE_JSON) == QUICKNET_SAMPLE
    assert QUICKNET_SAMPLE.as_dict() == SAMPLE_JSON


def test_parse_round_refuses_a_randomness_that_is_not_sha256_of_the_signature() -> None:
    lying = {**SAMPLE_JSON, "randomness": hashlib.sha256(b"chosen").hexdigest()}
    with pytest.raises(BeaconError, match="randomness"):
        parse_round(QUICKNET, lying)


@pytest.mark.parametrize("missing", ["round", "randomness", "signature"])
def test_parse_round_refuses_a_missing_field(missing: str) -> None:
    partial = {key: value for key, value in SAMPLE_JSON.items() if key != missing}
    with pytest.raises(BeaconError, match=missing):
        parse_round(QUICKNET, partial)


def test_round_one_is_published_at_genesis() -> None:
    genesis = datetime.fromtimestamp(QUICKNET.genesis_time, UTC)
    assert round_time(QUICKNET, 1) == genesis
    assert round_time(QUICKNET, 2) == genesis + timedelta(seconds=QUICKNET.period)
    assert round_time(QUICKNET, 1).tzinfo is UTC


def test_first_round_at_or_after() -> None:
    at = round_time(QUICKNET, 657413)
    assert first_round_at_or_after(QUICKNET, at) == 657413
    assert first_round_at_or_after(QUICKNET, at + timedelta(seconds=1)) == 657414
    assert first_round_at_or_after(QUICKNET, at - timedelta(microseconds=1)) == 657413
    assert first_round_at_or_after(QUICKNET, at + timedelta(seconds=3)) == 657414
    assert first_round_at_or_after(QUICKNET, datetime(2000, 1, 1, tzinfo=UTC)) == 1


def test_chain_round_trips_through_a_dict() -> None:
    assert KNOWN_CHAINS == {"drand-quicknet": QUICKNET}
    data = QUICKNET.as_dict()
    assert set(data) == {"name", "chain_hash", "public_key", "scheme", "genesis_time", "period"}
    assert Chain.from_dict(json.loads(json.dumps(data))) == QUICKNET


def test_chain_from_dict_refuses_a_missing_or_ill_typed_field() -> None:
    data = QUICKNET.as_dict()
    del data["public_key"]
    with pytest.raises(BeaconError, match="public_key"):
        Chain.from_dict(data)
    with pytest.raises(BeaconError, match="period"):
        Chain.from_dict({**QUICKNET.as_dict(), "period": "3"})


@dataclass
class Beacon:
    """A local drand HTTP API: answers every GET with `status` and `body`, records the paths."""

    url: str = ""
    status: int = 200
    body: bytes = b""
    paths: list[str] = field(default_factory=list)


@pytest.fixture
def beacon() -> Iterator[Beacon]:
    state = Beacon()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.paths.append(self.path)
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_http_beacon_gives_the_verified_round(beacon: Beacon) -> None:
    beacon.body = json.dumps(SAMPLE_JSON).encode()
    got = HttpBeacon(beacon.url, timeout=5).fetch(QUICKNET, 657413)
    assert got == QUICKNET_SAMPLE
    assert isinstance(got, Round)
    assert beacon.paths == [f"/{QUICKNET.chain_hash}/public/657413"]


@pytest.mark.parametrize("status", [425, 404])
def test_http_beacon_gives_none_for_a_round_not_yet_published(beacon: Beacon, status: int) -> None:
    beacon.status, beacon.body = status, b'{"error": "round not yet available"}'
    assert HttpBeacon(beacon.url, timeout=5).fetch(QUICKNET, 99999999) is None
    assert beacon.paths == [f"/{QUICKNET.chain_hash}/public/99999999"]


def test_http_beacon_raises_on_a_server_error(beacon: Beacon) -> None:
    beacon.status, beacon.body = 500, b"oops"
    with pytest.raises(BeaconError, match="HTTP 500") as raised:
        HttpBeacon(beacon.url, timeout=5).fetch(QUICKNET, 657413)
    assert beacon.url in str(raised.value)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        # randomness consistent with the tampered signature, so only the pairing can refuse it
        pytest.param(
            {
                "round": QUICKNET_SAMPLE.round,
                "signature": NEGATED,
                "randomness": hashlib.sha256(bytes.fromhex(NEGATED)).hexdigest(),
            },
            "does not verify",
            id="tampered-signature",
        ),
        pytest.param({**SAMPLE_JSON, "randomness": "00" * 32}, "randomness", id="wrong-randomness"),
        pytest.param({**SAMPLE_JSON, "round": 657414}, "answered round 657414", id="another-round"),
        pytest.param([SAMPLE_JSON], "not a JSON object", id="not-an-object"),
    ],
)
def test_http_beacon_raises_on_a_wrong_answer(beacon: Beacon, answer: object, reason: str) -> None:
    beacon.body = json.dumps(answer).encode()
    with pytest.raises(BeaconError, match=reason) as raised:
        HttpBeacon(beacon.url, timeout=5).fetch(QUICKNET, 657413)
    assert str(raised.value).startswith(beacon.url)


def test_http_beacon_raises_when_nothing_answers() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    server.server_close()  # the port is now closed: connection refused
    with pytest.raises(BeaconError, match=url):
        HttpBeacon(url, timeout=5).fetch(QUICKNET, 657413)
