"""Public randomness from drand quicknet, verified offline.

drand (https://drand.love) is a network of independent operators (the League of Entropy) that
together publish, every few seconds, a threshold BLS signature over the number of the round.
Nobody can know a round's signature before it is published, and anyone can check it against the
chain's single public key. A lottery fixes the round number in advance; the round's signature,
fetched once it exists, is the draw's randomness, and the record can be checked later without
trusting drand's servers, the network or us.

Quicknet is drand's 3-second "unchained" chain on BLS12-381 with the scheme
bls-unchained-g1-rfc9380: the signature is a compressed G1 point (48 bytes) over
sha256(round as 8 big-endian bytes), hashed to G1 as in RFC 9380; the public key is a compressed
G2 point (96 bytes). What `verify` checks:

- the signature is 48 bytes of hex and a point of the prime-order subgroup of G1, not infinity;
- the pairing equation e(pk, H(message)) == e(g2, signature) holds, so the chain signed this
  very round;
- the randomness is sha256(signature), as drand defines it (`parse_round` also rejects a
  randomness given alongside that is anything else).

py_ecc (the Ethereum Foundation's pure-Python BLS12-381) does the curve arithmetic: no C
extension to build, and its hash-to-curve and point encodings are the standard ones drand uses.
Being pure Python, one verification takes from 0.2 s to about 1.5 s depending on the machine; a
draw verifies a single round, and the chain's decoded key is cached.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

# py_ecc raises the interpreter's recursion limit to 100,000 when imported, for every thread of the
# process; the web's JSON parser relies on the default limit to refuse absurdly nested bodies before
# they exhaust the C stack. The curve code below does not need the raised limit, so put it back.
_recursion_limit = sys.getrecursionlimit()
from py_ecc.bls.hash_to_curve import hash_to_G1  # noqa: E402
from py_ecc.bls.point_compression import decompress_G1, decompress_G2  # noqa: E402
from py_ecc.bls.typing import G1Compressed, G1Uncompressed, G2Compressed, G2Uncompressed  # noqa: E402
from py_ecc.fields import optimized_bls12_381_FQ12 as FQ12  # noqa: E402
from py_ecc.optimized_bls12_381.optimized_curve import G2, curve_order, is_inf, multiply, neg  # noqa: E402
from py_ecc.optimized_bls12_381.optimized_pairing import final_exponentiate, miller_loop  # noqa: E402

sys.setrecursionlimit(_recursion_limit)

SCHEME = "bls-unchained-g1-rfc9380"
DST = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_"
SIGNATURE_BYTES = 48
PUBLIC_KEY_BYTES = 96
MAX_ROUND = 2**64 - 1
MAX_ANSWER_BYTES = 64 * 1024
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
_T = TypeVar("_T")


class BeaconError(Exception):
    """A round that is not what the chain signed, or a beacon that answered wrongly."""


@dataclass(frozen=True)
class Chain:
    """A drand chain: what identifies it, the key its rounds are signed with, and its clock."""

    name: str
    chain_hash: str
    public_key: str
    scheme: str
    genesis_time: int
    period: int

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "chain_hash": self.chain_hash,
            "public_key": self.public_key,
            "scheme": self.scheme,
            "genesis_time": self.genesis_time,
            "period": self.period,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Chain:
        """The chain `as_dict` gave; BeaconError if a field is missing or of the wrong type."""
        chain = cls(
            name=_field(data, "name", str),
            chain_hash=_field(data, "chain_hash", str),
            public_key=_field(data, "public_key", str),
            scheme=_field(data, "scheme", str),
            genesis_time=_field(data, "genesis_time", int),
            period=_field(data, "period", int),
        )
        if chain.period < 1:
            raise BeaconError(f"field 'period' must be at least 1, not {chain.period}")
        return chain


def _field(data: Mapping[str, object], key: str, kind: type[_T]) -> _T:
    if key not in data:
        raise BeaconError(f"missing field {key!r}")
    value = data[key]
    # bool is an int to Python, never a round number or a time to us.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BeaconError(f"field {key!r} must be {kind.__name__}, not {type(value).__name__}")
    return value


QUICKNET = Chain(
    name="drand-quicknet",
    chain_hash="52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971",
    public_key=(
        "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c"
        "8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c921cc22b0e17e63aaf4bcb"
        "5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a"
    ),
    scheme=SCHEME,
    genesis_time=1692803367,
    period=3,
)

KNOWN_CHAINS: dict[str, Chain] = {QUICKNET.name: QUICKNET}


def round_time(chain: Chain, round: int) -> datetime:
    """When the round is published (UTC): genesis + (round - 1) * period."""
    if round < 1:
        raise ValueError(f"drand rounds start at 1, not {round}")
    return datetime.fromtimestamp(chain.genesis_time + (round - 1) * chain.period, UTC)


def first_round_at_or_after(chain: Chain, at: datetime) -> int:
    """The smallest round r >= 1 with round_time(chain, r) >= at (`at` must be tz-aware)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("first_round_at_or_after needs a timezone-aware datetime")
    since_genesis = at - datetime.fromtimestamp(chain.genesis_time, UTC)
    micros = since_genesis // timedelta(microseconds=1)
    if micros <= 0:
        return 1
    return 1 - (-micros // (chain.period * 1_000_000))  # 1 + ceil(micros / period)


def message(round: int) -> bytes:
    """What the chain signs for the round: sha256 of its number as 8 big-endian bytes."""
    return hashlib.sha256(round.to_bytes(8, "big")).digest()


def _decode_hex(value: str, what: str, length: int) -> bytes:
    if not _HEX.fullmatch(value):
        raise BeaconError(f"{what} is not hex")
    raw = bytes.fromhex(value)
    if len(raw) != length:
        raise BeaconError(f"{what} must be {length} bytes, not {len(raw)}")
    return raw


@functools.lru_cache(maxsize=8)
def _public_key_point(public_key: str) -> G2Uncompressed:
    """The chain's key as a G2 point of the prime-order subgroup; decoded once per key."""
    raw = _decode_hex(public_key, "public key", PUBLIC_KEY_BYTES)
    try:
        point = decompress_G2(
            G2Compressed((int.from_bytes(raw[:48], "big"), int.from_bytes(raw[48:], "big")))
        )
    except (ValueError, ArithmeticError) as error:
        raise BeaconError(f"public key is not a point of G2: {error}") from error
    if is_inf(point) or not is_inf(multiply(point, curve_order)):
        raise BeaconError("public key is not a point of G2's prime-order subgroup")
    return point


def _signature_point(raw: bytes) -> G1Uncompressed:
    try:
        point = decompress_G1(G1Compressed(int.from_bytes(raw, "big")))
    except (ValueError, ArithmeticError) as error:
        raise BeaconError(f"signature is not a point of G1: {error}") from error
    if is_inf(point) or not is_inf(multiply(point, curve_order)):
        raise BeaconError("signature is not a point of G1's prime-order subgroup")
    return point


def verify(chain: Chain, round: int, signature: str) -> str:
    """Check the BLS signature (hex) of the round against the chain's public key; returns the
    round's randomness (hex sha256 of the signature bytes). Raises BeaconError naming the problem
    (bad hex, wrong length 48 bytes, not a point, signature does not verify, unsupported scheme)."""
    if chain.scheme != SCHEME:
        raise BeaconError(f"unsupported scheme {chain.scheme!r} (only {SCHEME!r})")
    if isinstance(round, bool) or not 1 <= round <= MAX_ROUND:
        raise BeaconError(f"round {round!r} is not a drand round number")
    raw = _decode_hex(signature, "signature", SIGNATURE_BYTES)
    public_key = _public_key_point(chain.public_key)
    signed = _signature_point(raw)
    hashed = hash_to_G1(message(round), DST, hashlib.sha256)  # type: ignore[arg-type]
    # e(pk, H(m)) * e(-g2, sig) == 1, i.e. e(pk, H(m)) == e(g2, sig); one final exponentiation.
    product = miller_loop(public_key, hashed, final_exponentiate=False) * miller_loop(
        neg(G2), signed, final_exponentiate=False
    )
    if final_exponentiate(product) != FQ12.one():
        raise BeaconError(f"signature does not verify for round {round} of {chain.name}")
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class Round:
    """A verified round: its number, the chain's signature and the randomness derived from it."""

    round: int
    signature: str
    randomness: str

    def as_dict(self) -> dict[str, object]:
        return {"round": self.round, "signature": self.signature, "randomness": self.randomness}


def parse_round(chain: Chain, data: Mapping[str, object]) -> Round:
    """A round as drand's HTTP API returns it ({"round": N, "randomness": hex, "signature": hex}),
    verified: raises BeaconError if the signature does not verify or the randomness given is not
    sha256(signature)."""
    number = _field(data, "round", int)
    signature = _field(data, "signature", str).lower()
    randomness = _field(data, "randomness", str).lower()
    raw = _decode_hex(signature, "signature", SIGNATURE_BYTES)
    if randomness != hashlib.sha256(raw).hexdigest():  # cheap, so before the pairing
        raise BeaconError(f"randomness of round {number} is not sha256 of its signature")
    verify(chain, number, signature)
    return Round(round=number, signature=signature, randomness=randomness)


class HttpBeacon:
    """drand's HTTP API (https://api.drand.sh or any relay); every answer is verified."""

    def __init__(self, base_url: str = "https://api.drand.sh", timeout: float = 10.0) -> None:
        if not base_url.startswith(("https://", "http://")):
            raise ValueError(f"beacon URL must be http(s): {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def fetch(self, chain: Chain, round: int) -> Round | None:
        """GET {base_url}/{chain_hash}/public/{round}; None when the round does not exist yet
        (HTTP 425 Too Early or 404); the answer always verified via parse_round; network errors
        and other statuses raise BeaconError with the URL and reason."""
        url = f"{self.base_url}/{chain.chain_hash}/public/{round}"
        request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                body = response.read(MAX_ANSWER_BYTES + 1)
        except urllib.error.HTTPError as error:
            error.close()
            if error.code in (404, 425):
                return None
            raise BeaconError(f"{url}: HTTP {error.code} {error.reason}") from error
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise BeaconError(f"{url}: {reason}") from error
        if len(body) > MAX_ANSWER_BYTES:
            raise BeaconError(f"{url}: answer longer than {MAX_ANSWER_BYTES} bytes")
        try:
            data: Any = json.loads(body)
        except ValueError as error:
            raise BeaconError(f"{url}: answer is not JSON: {error}") from error
        if not isinstance(data, dict):
            raise BeaconError(f"{url}: answer is not a JSON object")
        if data.get("round") != round:
            raise BeaconError(f"{url}: answered round {data.get('round')!r}, not {round}")
        try:
            return parse_round(chain, data)
        except BeaconError as error:
            raise BeaconError(f"{url}: {error}") from error


QUICKNET_SAMPLE = Round(
    round=657413,
    signature=(
        "b713718a38ae728dfd477991af2822e08d2f305e47718cef9f7848ce4050e7be"
        "41076862b98fad56e91a6b85b89cd97b"
    ),
    randomness="fc1873a13f3545aeade8401532ef5519920652eee6b0d2b19ca12643b87b3587",
)
