"""The canonical stored record of an event: what each Merkle leaf commits to, and what an export
shows, with personal and secret fields committed through salted hashes so that a redacted export
still verifies.

A stored event's state is the library's JSON (its own `{"_type_": ..., "_data_": ...}` forms for
UUIDs, datetimes and the like), possibly compressed and encrypted at rest. The record takes that
JSON as it is, once decrypted and decompressed, so an outside verifier needs no Python types:

    record  = {"application", "originator_id", "originator_version", "topic", "state"}
    leaf    = SHA-256(0x00 || canonical(record))            (RFC 9162, 2.1.1)
    canonical(x) = JSON, keys sorted, separators "," and ":", UTF-8 without escapes

In `state`, every protected field's value is replaced by `{"_commitment_": hex}`, where
commitment = SHA-256(salt || canonical(value)) and salt = HMAC-SHA256(salt key, application "/"
originator id "/" version "/" field)[:16]. A full export shows the value and its salt beside the
record; a redacted one only the commitment. Secret fields (hashes of access codes, passwords,
TOTP secrets, session and token hashes) are never shown, redacted or not.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.merkle import leaf_hash

COMMITMENT = "_commitment_"

# Field names that say nothing about a person: shown in every export. A field of an event class
# that is in none of the three sets fails tests/unit/test_evidence.py, so nothing new slips out.
CLEAR = frozenset(
    [
        "actor",
        "attempt",
        "assignee_id",
        "at",
        "capacity",
        "case_document_bytes",
        "case_id",
        "checklist",
        "closes_at",
        "code",
        "code_step",
        "combined_seed",
        "commitment",
        "days",
        "deadline",
        "digest",
        "document_deadline_days",
        "document_id",
        "documents",
        "draw",
        "entries",
        "entries_digest",
        "expires_at",
        "fairness",
        "from_pool",
        "idempotency_key",
        "intake_id",
        "invited_at",
        "item",
        "kind",
        "language",
        "ledger_id",
        "media_type",
        "officer_id",
        "opens_at",
        "originator_topic",
        "policy",
        "pool",
        "pool_labels",
        "pools",
        "position",
        "randomness",
        "rank",
        "reason",
        "reasons",
        "reference",
        "replaces",
        "reported_by",
        "request_id",
        "retry_at",
        "role",
        "round",
        "scan",
        "secret",
        "section",
        "sections",
        "seed",
        "seed_commitment",
        "signature",
        "size",
        "slot",
        "slots",
        "source",
        "staff_id",
        "status",
        "step",
        "stream",
        "time_zone",
        "timestamp",
        "to_pool",
        "tracks_waitlist",
        "transport",
        "until",
        "unused_reserved",
        "verdict",
        "waitlist_length",
        "name",
        "log",
        "note",
        "root_hash",
    ]
)
# Fields that can carry what a person wrote or who they are: left out by `--redact`. Keys are
# "Aggregate.field" or "Aggregate.Event.field" (an intake's `name` is clear, a person's is not).
PERSONAL = frozenset(
    {
        "Case.answers",
        "Case.values",
        "Case.message",
        "Case.answer",
        "Case.note",
        "Case.name",
        "StaffMember.email",
        "StaffMember.name",
        "Message.facts",
        "Message.diagnostic",
        "Message.error",
    }
)
# Fields that are never shown: a hash of an access code or password can be attacked offline.
SECRET = frozenset(
    {
        "Case.access_code_hash",
        "Case.RecoveryRequested.request_id",
        "Case.AccessCodeReset.request_id",
        "StaffMember.password_hash",
        "StaffMember.totp_secret",
        "StaffMember.token_hash",
        "StaffMember.session_hash",
        "StaffMember.session_hashes",
    }
)
SALT_BYTES = 16


class EvidenceError(ValueError):
    """A stored event whose state cannot be read as the library's JSON (altered, or another key)."""


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def protection(topic: str, name: str) -> str:
    """ "secret", "personal" or "clear" for field `name` of the event class at `topic`."""
    qualname = topic.partition(":")[2]
    aggregate = qualname.partition(".")[0]
    for key in (f"{qualname}.{name}", f"{aggregate}.{name}"):
        if key in SECRET:
            return "secret"
        if key in PERSONAL:
            return "personal"
    return "clear"


def salt_key(secret: bytes) -> bytes:
    """The key behind every field's salt, derived from the deployment's secret."""
    return hmac.new(secret, b"carepath evidence salts", hashlib.sha256).digest()


def commitment(salt: bytes, value: Any) -> str:
    return hashlib.sha256(salt + canonical(value)).hexdigest()


@dataclass(frozen=True)
class Record:
    """One stored event as the tree sees it; `disclosed` holds each protected field's value and
    salt, which only a full export shows (and never for secret fields)."""

    application: str
    originator_id: str
    originator_version: int
    topic: str
    state: Mapping[str, Any]
    disclosed: Mapping[str, tuple[str, Any, bytes]] = field(default_factory=dict)

    def canonical(self) -> bytes:
        return canonical(
            {
                "application": self.application,
                "originator_id": self.originator_id,
                "originator_version": self.originator_version,
                "topic": self.topic,
                "state": self.state,
            }
        )

    def leaf(self) -> bytes:
        return leaf_hash(self.canonical())

    def timestamp(self) -> str | None:
        stamp = self.state.get("timestamp")
        data = stamp.get("_data_") if isinstance(stamp, dict) else None
        return data if isinstance(data, str) else None


def record_of(
    application: str,
    originator_id: Any,
    originator_version: int,
    topic: str,
    plaintext: bytes,
    key: bytes,
) -> Record:
    """The record of a stored event whose state, decrypted and decompressed, is `plaintext`."""
    try:
        state = json.loads(plaintext)
    except (UnicodeDecodeError, ValueError):
        raise EvidenceError("the stored state is not JSON") from None
    if not isinstance(state, dict):
        raise EvidenceError("the stored state is not a JSON object")
    originator = str(originator_id)
    committed: dict[str, Any] = {}
    disclosed: dict[str, tuple[str, Any, bytes]] = {}
    for name, value in state.items():
        kind = protection(topic, name)
        if kind == "clear":
            committed[name] = value
            continue
        label = f"{application}/{originator}/{originator_version}/{name}".encode()
        salt = hmac.new(key, label, hashlib.sha256).digest()[:SALT_BYTES]
        committed[name] = {COMMITMENT: commitment(salt, value)}
        disclosed[name] = (kind, value, salt)
    return Record(application, originator, originator_version, topic, committed, disclosed)


def export_line(record: Record, index: int, notification_id: int, *, redact: bool) -> str:
    """One line of `carepath audit export`: the record, its position and leaf hash, and (unless
    redacted) the protected fields' values with their salts."""
    disclosed = {
        name: {"value": value, "salt": salt.hex()}
        for name, (kind, value, salt) in sorted(record.disclosed.items())
        if kind == "personal" and not redact
    }
    line = {
        "application": record.application,
        "index": index,
        "notification_id": notification_id,
        "originator_id": record.originator_id,
        "originator_version": record.originator_version,
        "topic": record.topic,
        "timestamp": record.timestamp(),
        "state": record.state,
        "disclosed": disclosed,
        "leaf_hash": record.leaf().hex(),
    }
    return canonical(line).decode()


def check_line(line: Mapping[str, Any]) -> Iterable[str]:
    """What is wrong with one export line (nothing, for a true one): its disclosed values must
    match their commitments, and its record must hash to its leaf."""
    state = line.get("state")
    if not isinstance(state, dict):
        yield "no state"
        return
    for name, shown in line.get("disclosed", {}).items():
        held = state.get(name)
        if not isinstance(held, dict) or COMMITMENT not in held:
            yield f"{name} is disclosed but not committed"
        elif commitment(bytes.fromhex(shown["salt"]), shown["value"]) != held[COMMITMENT]:
            yield f"{name} does not match its commitment"
    record = Record(
        line["application"],
        line["originator_id"],
        line["originator_version"],
        line["topic"],
        state,
    )
    if record.leaf().hex() != line.get("leaf_hash"):
        yield "the record does not hash to its leaf"
