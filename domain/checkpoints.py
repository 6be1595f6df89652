"""Signed checkpoints of the logs: the Checkpoints application records each one, once.

A checkpoint states a log's Merkle tree size and root hash in the C2SP checkpoint format, signed
with the deployment's Ed25519 key (domain.signed_note). The tree follower (projections/tree.py)
asks for one every N events, at each intake's opening and closing, and the operator on demand
(`carepath audit checkpoint`). The signing key lives in a file outside the database, so a copy of
the database cannot forge a checkpoint, and published checkpoints hold even against whoever can
rewrite the database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain.signed_note import Checkpoint as CheckpointBody
from domain.signed_note import NoteError, Signer, Verifier

NAMESPACE = UUID("5b0f5f5e-8a7c-4a51-9d0e-0c1d3c7a2f10")
DEFAULT_ORIGIN = "carepath.local"


def checkpoint_id(log: str, size: int) -> UUID:
    """One checkpoint per log and size: signing the same one twice converges on one record."""
    return uuid.uuid5(NAMESPACE, f"{log}/{size}")


def origin_of(prefix: str, log: str) -> str:
    return f"{prefix}/{log}"


class Checkpoint(Aggregate):
    """A signed statement that the log `log` had `size` events with this root hash."""

    class Signed(Aggregate.Created):
        log: str
        size: int
        root_hash: str  # hex
        note: str  # the signed note, as published
        reasons: list[str]  # "every N", "intake opened", "intake closed", "on demand"

    @classmethod
    def sign(cls, log: str, size: int, root: bytes, note: str, reasons: list[str]) -> Checkpoint:
        return cls._create(
            cls.Signed,
            id=checkpoint_id(log, size),
            log=log,
            size=size,
            root_hash=root.hex(),
            note=note,
            reasons=reasons,
        )

    def __init__(self, log: str, size: int, root_hash: str, note: str, reasons: list[str]) -> None:
        self.log = log
        self.size = size
        self.root_hash = root_hash
        self.note = note
        self.reasons = reasons


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint as recorded: where in its own log, when, and why."""

    log: str
    size: int
    root: bytes
    note: str
    reasons: tuple[str, ...]
    signed_at: datetime
    position: int  # in the Checkpoints log


class Checkpoints(Application[UUID]):
    """Records signed checkpoints; lists them for publication and verification."""

    name = "Checkpoints"

    def __init__(self, env: dict[str, str] | None = None, *, signer: Signer | None = None) -> None:
        super().__init__(env)
        self.signer = signer

    @property
    def verifier(self) -> Verifier | None:
        return self.signer.verifier if self.signer else None

    def record(self, log: str, size: int, root: bytes, reasons: Iterable[str]) -> bool:
        """Sign and record the checkpoint; False when one of this log and size was already
        recorded (a follower that restarted asks again)."""
        if self.signer is None:
            raise NoteError("no signing key is configured")
        body = CheckpointBody(origin_of(self.signer.name, log), size, root).body()
        checkpoint = Checkpoint.sign(log, size, root, self.signer.sign(body), sorted(set(reasons)))
        try:
            self.save(checkpoint)
        except IntegrityError:
            return False
        return True

    def all(self) -> list[SignedCheckpoint]:
        """Every checkpoint in the order recorded."""
        found: list[SignedCheckpoint] = []
        position = 0
        while True:
            page = self.recorder.select_notifications(
                start=position, limit=1000, inclusive_of_start=False
            )
            for notification in page:
                signed = self.mapper.to_domain_event(notification)
                if isinstance(signed, Checkpoint.Signed):
                    found.append(
                        SignedCheckpoint(
                            log=signed.log,
                            size=signed.size,
                            root=bytes.fromhex(signed.root_hash),
                            note=signed.note,
                            reasons=tuple(signed.reasons),
                            signed_at=signed.timestamp,
                            position=notification.id,
                        )
                    )
            if len(page) < 1000:
                return found
            position = page[-1].id


def load_signer(path: Path, name: str = DEFAULT_ORIGIN, *, create: bool = False) -> Signer:
    """The signing key kept in `path` (mode 0600), made on first use when `create` is set."""
    if not path.exists() and create:
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f"{path.name}.{os.getpid()}")
        draft.write_text(Signer.generate(name).encode() + "\n")
        draft.chmod(0o600)
        try:
            os.link(draft, path)  # atomic: of two racing processes, one key wins
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    try:
        text = path.read_text()
    except OSError as missing:
        raise NoteError(f"cannot read the signing key {path}: {missing.strerror}") from None
    return Signer.parse(text)


def parse_notes(text: str) -> list[str]:
    """Split a file of published checkpoints (signed notes one after another, as `carepath audit
    checkpoints` writes them) into notes: a note ends with its last signature line."""
    notes: list[str] = []
    lines: list[str] = []
    signed = False
    for line in text.splitlines(keepends=True):
        is_signature = line.startswith("\u2014 ")
        if signed and not is_signature:
            notes.append("".join(lines))
            lines = []
        if not lines and not line.strip():
            continue  # blank lines between notes
        lines.append(line)
        signed = is_signature
    if lines:
        if not signed:
            raise NoteError("the file ends in the middle of a note")
        notes.append("".join(lines))
    return notes
