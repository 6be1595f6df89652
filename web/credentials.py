"""Staff credentials: Argon2id password hashes, TOTP second factor, sealed secrets, QR codes."""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable

import pyotp
import segno
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.identity import derive_key

ISSUER = "carepath"
DIGITS = 6
INTERVAL = 30
SEAL_LABEL = "staff-totp-seal"
SEAL_VERSION = "v1"


class WebCredentials:
    """The process's `domain.staff.Credentials`: checks what staff type against what the log keeps.

    TOTP secrets are stored sealed (AES-GCM under a key derived from the server secret), so the
    log alone does not let anyone make codes.
    """

    def __init__(
        self,
        secret: bytes,
        *,
        hasher: PasswordHasher | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._seal = AESGCM(derive_key(secret, SEAL_LABEL))
        self._hasher = hasher or PasswordHasher()  # argon2-cffi's default type is Argon2id
        self._clock = clock
        # A real hash of a random password: unknown addresses take as long as known ones.
        self._decoy = self._hasher.hash(secrets.token_urlsafe(16))

    # Passwords

    def hash_password(self, password: str) -> str:
        return self._hasher.hash(password)

    def password_matches(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash or self._decoy, password) and bool(stored_hash)
        except (VerificationError, InvalidHashError):
            return False

    # Second factor

    def new_secret_for(self, seed: bytes) -> str:
        """The base32 TOTP secret of an enrolment link (stable: the page and its POST agree)."""
        return base64.b32encode(seed[:20]).decode().rstrip("=")

    def code_step(self, sealed_secret: str, code: str) -> int | None:
        try:
            secret = self.unseal(sealed_secret)
        except ValueError:
            return None
        return self.step_for(secret, code)

    def step_for(self, secret: str, code: str) -> int | None:
        """The time step (unix time // 30) the code belongs to, within one step either side."""
        code = code.strip().replace(" ", "")
        if len(code) != DIGITS or not code.isascii() or not code.isdigit():
            return None
        totp = pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL)
        now = self._clock()
        if not totp.verify(code, for_time=now, valid_window=1):
            return None
        step = totp.timecode(now)
        for candidate in (step, step - 1, step + 1):  # verify says yes; which step was it?
            if secrets.compare_digest(totp.generate_otp(candidate), code):
                return candidate
        return None

    def provisioning_uri(self, secret: str, email: str) -> str:
        return pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL).provisioning_uri(
            name=email, issuer_name=ISSUER
        )

    @staticmethod
    def qr_data_uri(uri: str) -> str:
        """The otpauth URI as a QR code: an SVG data URI for an <img> (the CSP allows data:)."""
        return str(segno.make(uri, error="m").svg_data_uri(scale=5, border=2))

    # Sealing

    def seal(self, secret: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._seal.encrypt(nonce, secret.encode(), SEAL_VERSION.encode())
        return f"{SEAL_VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def unseal(self, sealed: str) -> str:
        """The secret in clear; ValueError if it was not sealed under this server's key."""
        version, _, payload = sealed.partition(".")
        if version != SEAL_VERSION:
            raise ValueError("not a sealed secret")
        try:
            raw = base64.urlsafe_b64decode(payload.encode())
            return self._seal.decrypt(raw[:12], raw[12:], SEAL_VERSION.encode()).decode()
        except (InvalidTag, ValueError) as broken:
            raise ValueError("sealed secret does not open with this key") from broken
