"""Signed checkpoints: a log's size and root hash in the C2SP checkpoint format, signed as a C2SP
signed note with Ed25519, so that anyone holding the public key can check a tree head offline.

    checkpoint body   <origin>\\n<tree size>\\n<base64 root hash>\\n
    signed note       <body>\\n— <key name> <base64(key id || signature)>\\n
    key id            the first 4 bytes of SHA-256(<key name> || 0x0A || 0x01 || public key)
    verifier key      <key name>+<key id, 8 hex digits>+<base64(0x01 || public key)>
    signer key        PRIVATE+KEY+<key name>+<key id>+<base64(0x01 || private seed)>

(c2sp.org/signed-note and c2sp.org/tlog-checkpoint; the same format as Go's
golang.org/x/mod/sumdb/note, whose test vectors tests/unit/test_signed_note.py uses.) No Python
package implements signed notes; Ed25519 itself is `cryptography`'s.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

ED25519 = b"\x01"
DASH = "\u2014"  # the em dash that starts a signature line
NAME = re.compile(r"[^\s+]+")


class NoteError(ValueError):
    """A malformed key, note or checkpoint, or a signature that does not verify."""


def key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public).digest()[:4]


def _name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise NoteError(f"{name!r} is not a key name: no spaces, no plus signs, not empty")
    return name


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError(f"{what} is not base64") from None


@dataclass(frozen=True)
class Verifier:
    name: str
    public: bytes

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        parts = vkey.strip().split("+", 2)  # base64 may hold "+" too
        if len(parts) != 3:
            raise NoteError("a verifier key is <name>+<key id>+<base64 key>")
        name, hex_id, encoded = parts
        raw = _b64(encoded, "the verifier key")
        if len(raw) != 33 or raw[:1] != ED25519:
            raise NoteError("the verifier key is not an Ed25519 key")
        found = cls(_name(name), raw[1:])
        if hex_id.lower() != found.id.hex():
            raise NoteError("the verifier key's id does not match its name and key")
        return found

    @property
    def id(self) -> bytes:
        return key_id(self.name, self.public)

    def encode(self) -> str:
        return f"{self.name}+{self.id.hex()}+{base64.b64encode(ED25519 + self.public).decode()}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Signer:
    name: str
    seed: bytes  # the Ed25519 private key's 32 bytes

    @classmethod
    def generate(cls, name: str) -> Signer:
        key = Ed25519PrivateKey.generate()
        return cls(_name(name), key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))

    @classmethod
    def parse(cls, skey: str) -> Signer:
        parts = skey.strip().split("+", 4)  # base64 may hold "+" too
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("a signer key is PRIVATE+KEY+<name>+<key id>+<base64 key>")
        name, hex_id, encoded = parts[2:]
        raw = _b64(encoded, "the signer key")
        if len(raw) != 33 or raw[:1] != ED25519:
            raise NoteError("the signer key is not an Ed25519 key")
        found = cls(_name(name), raw[1:])
        if hex_id.lower() != found.verifier.id.hex():
            raise NoteError("the signer key's id does not match its name and key")
        return found

    @property
    def verifier(self) -> Verifier:
        public = (
            Ed25519PrivateKey.from_private_bytes(self.seed)
            .public_key()
            .public_bytes(Encoding.Raw, PublicFormat.Raw)
        )
        return Verifier(self.name, public)

    def encode(self) -> str:
        encoded = base64.b64encode(ED25519 + self.seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.id.hex()}+{encoded}"

    def sign(self, text: str) -> str:
        """The signed note: `text` (ending in a newline), a blank line, this key's signature."""
        if not text.endswith("\n") or "\n\n" in text:
            raise NoteError("a note's text ends with a newline and has no blank line")
        signature = Ed25519PrivateKey.from_private_bytes(self.seed).sign(text.encode())
        tag = base64.b64encode(self.verifier.id + signature).decode()
        return f"{text}\n{DASH} {self.name} {tag}\n"


def open_note(note: str, verifier: Verifier) -> str:
    """The text of a signed note that `verifier`'s key signed (NoteError otherwise)."""
    text, separator, signatures = note.rpartition("\n\n")
    if not separator or not signatures.endswith("\n"):
        raise NoteError("a signed note is its text, a blank line, and signature lines")
    text += "\n"
    for line in signatures[:-1].split("\n"):
        dash, _, rest = line.partition(" ")
        name, _, tag = rest.partition(" ")
        if dash != DASH or not name or not tag:
            raise NoteError(f"{line!r} is not a signature line")
        raw = _b64(tag, "a signature")
        if name == verifier.name and raw[:4] == verifier.id:
            if verifier.verify(text.encode(), raw[4:]):
                return text
            raise NoteError(f"the signature of {name} does not verify")
    raise NoteError(f"the note has no signature by {verifier.name}")


@dataclass(frozen=True)
class Checkpoint:
    origin: str  # the log's name, e.g. "carepath.example/Registry"
    size: int
    root: bytes

    def body(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        lines = body.split("\n")
        if len(lines) < 4 or not lines[0] or not lines[1].isdigit():
            raise NoteError("a checkpoint is an origin line, a tree size and a base64 root hash")
        if lines[1] != str(int(lines[1])):
            raise NoteError("a checkpoint's tree size has no leading zeros")
        root = _b64(lines[2], "the checkpoint's root hash")
        if len(root) != 32:
            raise NoteError("the checkpoint's root hash is not 32 bytes")
        return cls(lines[0], int(lines[1]), root)
