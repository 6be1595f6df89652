"""Case ids from identities, references with a check character, and access codes.

All secrets are derived from one registry secret with HMAC-SHA256 and a label, so one value in the
configuration drives them and a leak of one derived key does not reveal the others.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from uuid import UUID, uuid5

from domain.values import Identity

# Crockford's base32: no I, L, O, U, so nothing reads as 1, 0 or another letter.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_READS_AS = {"O": "0", "I": "1", "L": "1"}
REFERENCE_LENGTH = 8  # 40 random bits, plus one check character
ACCESS_CODE_LENGTH = 12  # 60 bits

NAMESPACE = UUID("6f1d3c0e-8a55-4c3e-9f0b-2f6f2a8f4b11")

# Labels of the keys derived from the registry secret: each service that needs one derives it.
CASE_ID_KEY = "case-id"
ACCESS_CODE_KEY = "access-code"
ACCESS_CODE_HASH_KEY = "access-code-hash"
RECOVERY_LINK_KEY = "recovery-link"


def derive_key(secret: bytes, label: str) -> bytes:
    """A sub-key for one purpose."""
    return hmac.new(secret, label.encode(), hashlib.sha256).digest()


def case_id_for(identity_key: bytes, intake_id: UUID, identity: Identity) -> UUID:
    """The case id: a keyed hash of the intake and the normalised identity, so one per person.

    Keyed so that an id seen in the database or a log cannot be tested against a guessed person.
    """
    message = f"{intake_id.hex}|{identity.normalised()}".encode()
    digest = hmac.new(identity_key, message, hashlib.sha256).digest()
    raw = bytearray(digest[:16])
    raw[6] = (raw[6] & 0x0F) | 0x80  # RFC 9562 version 8: a custom, here keyed-hash, UUID
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC variant
    return UUID(bytes=bytes(raw))


def _check_character(symbols: str) -> str:
    """Luhn mod 32 over the alphabet: catches every single-symbol error and most swaps."""
    n = len(ALPHABET)
    factor, total = 2, 0
    for ch in reversed(symbols):
        addend = factor * ALPHABET.index(ch)
        factor = 1 if factor == 2 else 2
        total += addend // n + addend % n
    return ALPHABET[(n - total % n) % n]


def new_reference() -> str:
    """A fresh reference: eight random symbols and a check character, shown as XXXX-XXXX-C."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(REFERENCE_LENGTH))
    return format_reference(body + _check_character(body))


def format_reference(symbols: str) -> str:
    return f"{symbols[:4]}-{symbols[4:8]}-{symbols[8:]}"


def _symbols(text: str) -> str:
    cleaned = "".join(ch for ch in text.upper() if ch not in " -\t")
    return "".join(_READS_AS.get(ch, ch) for ch in cleaned)


def parse_reference(text: str) -> str | None:
    """The canonical form of a typed reference, or None if it cannot be one (bad check symbol)."""
    symbols = _symbols(text)
    if len(symbols) != REFERENCE_LENGTH + 1 or any(ch not in ALPHABET for ch in symbols):
        return None
    if _check_character(symbols[:-1]) != symbols[-1]:
        return None
    return format_reference(symbols)


def reference_index_id(reference: str) -> UUID:
    return uuid5(NAMESPACE, f"reference:{reference}")


def access_code_for(code_key: bytes, case_id: UUID, idempotency_key: str) -> str:
    """The access code of a registration, derived so that a replayed request can show it again.

    Only a client holding the registration's random idempotency key (and the server's key) can
    recompute it; it is stored only as a hash.
    """
    digest = hmac.new(code_key, f"{case_id.hex}|{idempotency_key}".encode(), hashlib.sha256)
    number = int.from_bytes(digest.digest()[:8], "big")
    symbols = ""
    for _ in range(ACCESS_CODE_LENGTH):
        number, index = divmod(number, len(ALPHABET))
        symbols += ALPHABET[index]
    return "-".join(symbols[i : i + 4] for i in range(0, ACCESS_CODE_LENGTH, 4))


def hash_access_code(hash_key: bytes, case_id: UUID, code: str) -> str:
    """The stored form of an access code.

    A keyed SHA-256 rather than a memory-hard hash: the code is 60 random bits (not a chosen
    password), the case id salts it, and the key lives outside the database, so an offline guess
    is out of reach while sign-in stays cheap during a surge.
    """
    message = f"{case_id.hex}|{_symbols(code)}".encode()
    return hmac.new(hash_key, message, hashlib.sha256).hexdigest()


def access_code_matches(hash_key: bytes, case_id: UUID, code: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_access_code(hash_key, case_id, code), stored_hash)


RECOVERY_REQUEST_BYTES = 16  # a recovery request's id: 128 random bits, in the link only as a MAC


def new_recovery_request_id() -> str:
    return secrets.token_hex(RECOVERY_REQUEST_BYTES)


def recovery_token(recovery_key: bytes, case_id: UUID, request_id: str) -> str:
    """The token of a recovery link: the case, the request, and a MAC over both.

    The request id is recorded in the log (`Case.RecoveryRequested`); without the server's key
    the token cannot be made from it, so reading the log does not open anyone's case.
    """
    mac = hmac.new(recovery_key, f"{case_id.hex}|{request_id}".encode(), hashlib.sha256)
    return f"{case_id.hex}.{request_id}.{mac.hexdigest()[:32]}"


def parse_recovery_token(recovery_key: bytes, token: str) -> tuple[UUID, str] | None:
    """(case id, request id) of a genuine token, or None for anything else (never raises)."""
    parts = token.split(".")
    if len(parts) != 3 or not all(re.fullmatch(r"[0-9a-f]{32}", part) for part in parts):
        return None
    case_hex, request_id, _ = parts
    case_id = UUID(hex=case_hex)
    if not hmac.compare_digest(recovery_token(recovery_key, case_id, request_id), token):
        return None
    return case_id, request_id
