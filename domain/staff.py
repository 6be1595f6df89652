"""Staff accounts: officers, auditors and admins, their enrolment, sign-ins and sessions.

Its own eventsourcing Application beside the Registry (it owns its data; its log is the record of
who could act, and when they signed in). Passwords and second-factor codes are checked by a
`Credentials` object handed in by the process (web/credentials.py: Argon2id and TOTP), so this
module stays free of any framework or crypto library; the rules (lock-out, one use per code,
session lifetimes, who may be enrolled) live here.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol
from uuid import UUID, uuid5

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import EnvType

from domain.errors import (
    EnrolmentInvalid,
    InvalidValue,
    StaffAlreadyExists,
    StaffLockedOut,
    StaffNotFound,
    StaffSessionInvalid,
    StaffSignInFailed,
)
from domain.identity import NAMESPACE, derive_key
from domain.values import StaffRole, StaffSession, StaffView

MAX_FAILURES = 5  # consecutive failed sign-ins before a lock-out
LOCK_MINUTES = 15
ENROLMENT_HOURS = 72
SESSION_HOURS = 8
_ROSTER_ID = uuid5(NAMESPACE, "staff-roster")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def token_hash(token: str) -> str:
    """How a session or enrolment token is stored: 256 random bits need no salt or stretching."""
    return hashlib.sha256(token.encode()).hexdigest()


class Credentials(Protocol):
    """Checks what a person typed against what the log stores (hashes, sealed secrets)."""

    def password_matches(self, stored_hash: str, password: str) -> bool:
        """True if the password matches; with an empty hash, spends the time of a real check and
        is False (so an unknown address answers as slowly as a known one)."""
        ...

    def code_step(self, sealed_secret: str, code: str) -> int | None:
        """The time step a second-factor code is valid for, or None if it is wrong."""
        ...


class StaffMember(Aggregate):
    """One member of staff: role, enrolment (password hash, sealed TOTP secret), sessions."""

    id: UUID  # a keyed hash of the normalised email: one account per address

    class Added(Aggregate.Created):
        email: str
        name: str
        role: str
        actor: str

    class EnrolmentIssued(Aggregate.Event):
        """A one-time enrolment link was made; issuing one clears any password and second factor."""

        token_hash: str
        expires_at: datetime
        actor: str

    class Enrolled(Aggregate.Event):
        password_hash: str
        totp_secret: str  # sealed by the Credentials' key: never in clear in the log
        actor: str

    class SignInRefused(Aggregate.Event):
        reason: str  # password, second_factor

    class LockedOut(Aggregate.Event):
        until: datetime

    class SignedIn(Aggregate.Event):
        session_hash: str
        expires_at: datetime
        code_step: int

    class SignedOut(Aggregate.Event):
        session_hash: str

    class SessionsRevoked(Aggregate.Event):
        session_hashes: list[str]
        actor: str

    class Disabled(Aggregate.Event):
        actor: str

    class Enabled(Aggregate.Event):
        actor: str

    @event(Added)
    def __init__(self, email: str, name: str, role: str, actor: str) -> None:
        self.email = email
        self.name = name
        self.role = StaffRole(role)
        self.password_hash = ""
        self.totp_secret = ""
        self.enrolment_hash = ""
        self.enrolment_expires: datetime | None = None
        self.failures = 0
        self.locked_until: datetime | None = None
        self.last_code_step = 0
        self.sessions: dict[str, datetime] = {}  # session hash -> expiry
        self.disabled = False

    @property
    def enrolled(self) -> bool:
        return bool(self.password_hash)

    def active_sessions(self, now: datetime) -> list[str]:
        return [h for h, expires in self.sessions.items() if expires > now]

    @event(EnrolmentIssued)
    def _enrolment_issued(self, token_hash: str, expires_at: datetime, actor: str) -> None:
        self.enrolment_hash = token_hash
        self.enrolment_expires = expires_at
        self.password_hash = ""
        self.totp_secret = ""
        self.sessions = {}
        self.failures = 0
        self.locked_until = None

    @event(Enrolled)
    def _enrolled(self, password_hash: str, totp_secret: str, actor: str) -> None:
        self.password_hash = password_hash
        self.totp_secret = totp_secret
        self.enrolment_hash = ""
        self.enrolment_expires = None

    @event(SignInRefused)
    def _refused(self, reason: str) -> None:
        self.failures += 1

    @event(LockedOut)
    def _locked_out(self, until: datetime) -> None:
        self.locked_until = until
        self.failures = 0

    @event(SignedIn)
    def _signed_in(self, session_hash: str, expires_at: datetime, code_step: int) -> None:
        self.sessions[session_hash] = expires_at
        self.last_code_step = code_step
        self.failures = 0
        self.locked_until = None

    @event(SignedOut)
    def _signed_out(self, session_hash: str) -> None:
        self.sessions.pop(session_hash, None)

    @event(SessionsRevoked)
    def _revoked(self, session_hashes: list[str], actor: str) -> None:
        for session_hash in session_hashes:
            self.sessions.pop(session_hash, None)

    @event(Disabled)
    def _disabled(self, actor: str) -> None:
        self.disabled = True
        self.sessions = {}

    @event(Enabled)
    def _enabled(self, actor: str) -> None:
        self.disabled = False


class StaffRoster(Aggregate):
    """Every staff member ever added, so listing them needs no scan of the log."""

    class Started(Aggregate.Created):
        pass

    class MemberAdded(Aggregate.Event):
        staff_id: UUID

    @staticmethod
    def create_id() -> UUID:
        return _ROSTER_ID

    @event(Started)
    def __init__(self) -> None:
        self.member_ids: list[UUID] = []

    @event(MemberAdded)
    def add(self, staff_id: UUID) -> None:
        self.member_ids.append(staff_id)


class Staff(Application[UUID]):
    """Records staff accounts; checks sign-ins and sessions; the one way in for staff."""

    name = "Staff"
    # A member's log grows by a few events per sign-in; every staff request reads it.
    snapshotting_intervals = {StaffMember: 50}  # noqa: RUF012 - the library's class attribute

    def __init__(
        self,
        env: EnvType | None = None,
        *,
        secret: bytes,
        credentials: Credentials,
        clock: Callable[[], datetime] = _utcnow,
        session_hours: float = SESSION_HOURS,
    ) -> None:
        super().__init__(env)
        self._id_key = derive_key(secret, "staff-id")
        self._credentials = credentials
        self._clock = clock
        self._session_lifetime = timedelta(hours=session_hours)

    # Accounts

    def staff_id_for(self, email: str) -> UUID:
        digest = hmac.new(self._id_key, _normalise(email).encode(), hashlib.sha256).digest()
        raw = bytearray(digest[:16])
        raw[6] = (raw[6] & 0x0F) | 0x80  # RFC 9562 version 8, like case ids
        raw[8] = (raw[8] & 0x3F) | 0x80
        return UUID(bytes=bytes(raw))

    def add(self, email: str, *, role: StaffRole | str, name: str, actor: str) -> tuple[UUID, str]:
        """Add a member; returns (id, one-time enrolment token)."""
        address = _normalise(email)
        if not _looks_like_email(address):
            raise InvalidValue("email", "give an email address like name@example.org")
        if role not in {r.value for r in StaffRole}:
            raise InvalidValue("role", f"must be one of {', '.join(r.value for r in StaffRole)}")
        display = name.strip() or address.split("@")[0]
        if len(display) > 100:
            raise InvalidValue("name", "give a name of at most 100 characters")
        member = StaffMember(  # type: ignore[call-arg]  # the library's metaclass accepts id=
            id=self.staff_id_for(address), email=address, name=display, role=role, actor=actor
        )
        token = secrets.token_urlsafe(32)
        member._enrolment_issued(
            token_hash=token_hash(token), expires_at=self._enrolment_expiry(), actor=actor
        )
        roster = self._roster()
        roster.add(member.id)
        try:
            self.save(member, roster)
        except IntegrityError:
            if member.id in self.repository:
                raise StaffAlreadyExists(f"{address} already has a staff account") from None
            raise
        return member.id, token

    def reset(self, staff_id: UUID, *, actor: str) -> str:
        """A new enrolment token: the old password, second factor and sessions stop working."""
        member = self._member(staff_id)
        token = secrets.token_urlsafe(32)
        member._enrolment_issued(
            token_hash=token_hash(token), expires_at=self._enrolment_expiry(), actor=actor
        )
        self.save(member)
        return token

    def disable(self, staff_id: UUID, *, actor: str) -> None:
        member = self._member(staff_id)
        if not member.disabled:
            member._disabled(actor=actor)
            self.save(member)

    def enable(self, staff_id: UUID, *, actor: str) -> None:
        member = self._member(staff_id)
        if member.disabled:
            member._enabled(actor=actor)
            self.save(member)

    def revoke_sessions(self, staff_id: UUID, *, actor: str) -> int:
        """End every session of the member now; returns how many were active."""
        member = self._member(staff_id)
        active = member.active_sessions(self._clock())
        if member.sessions:
            member._revoked(session_hashes=list(member.sessions), actor=actor)
            self.save(member)
        return len(active)

    def get(self, staff_id: UUID) -> StaffView:
        return self._view(self._member(staff_id))

    def find(self, email: str) -> StaffView:
        return self.get(self.staff_id_for(email))

    def list_staff(self) -> list[StaffView]:
        return sorted(
            (self.get(i) for i in self._roster().member_ids), key=lambda s: (s.role, s.email)
        )

    # Enrolment

    def enrolment(self, staff_id: UUID, token: str) -> StaffView:
        """The member an enrolment link is for, if the link is still good."""
        member = self._member_or(staff_id, EnrolmentInvalid("this enrolment link is not valid"))
        self._check_enrolment(member, token)
        return self._view(member)

    def enrol(
        self, staff_id: UUID, token: str, *, password_hash: str, sealed_secret: str
    ) -> StaffView:
        """Record the password hash and the sealed second-factor secret; the link is used up."""
        member = self._member_or(staff_id, EnrolmentInvalid("this enrolment link is not valid"))
        self._check_enrolment(member, token)
        member._enrolled(password_hash=password_hash, totp_secret=sealed_secret, actor="self")
        self.save(member)
        return self._view(member)

    def enrolment_secret_seed(self, staff_id: UUID, token: str) -> bytes:
        """Stable bytes for one enrolment link, so the page and its POST show the same secret."""
        return hmac.new(self._id_key, f"totp|{staff_id.hex}|{token}".encode(), "sha256").digest()

    # Sign-in and sessions

    def sign_in(self, email: str, password: str, code: str) -> StaffSession:
        """Check password and second-factor code; the same error for any mismatch.

        Every failure is an event; the fifth in a row locks the account for a while. A code is
        accepted once: a code of the same or an earlier time step than the last one used fails.
        """
        failed = StaffSignInFailed("email, password or code not recognised")
        now = self._clock()
        try:
            member = self._member(self.staff_id_for(email))
        except StaffNotFound:
            self._credentials.password_matches("", password)
            raise failed from None
        if member.disabled or not member.enrolled:
            self._credentials.password_matches("", password)
            raise failed
        if member.locked_until is not None and member.locked_until > now:
            raise StaffLockedOut(member.locked_until)
        if not self._credentials.password_matches(member.password_hash, password):
            self._fail(member, "password", now)
            raise failed
        step = self._credentials.code_step(member.totp_secret, code)
        if step is None or step <= member.last_code_step:
            self._fail(member, "second_factor", now)
            raise failed
        token = secrets.token_urlsafe(32)
        expires_at = now + self._session_lifetime
        member._signed_in(session_hash=token_hash(token), expires_at=expires_at, code_step=step)
        self.save(member)
        return StaffSession(staff_id=member.id, token=token, expires_at=expires_at)

    def authenticate(self, staff_id: UUID, token: str) -> StaffView:
        """The member a session token belongs to, while the session is live."""
        invalid = StaffSessionInvalid("the session has ended")
        member = self._member_or(staff_id, invalid)
        expires = member.sessions.get(token_hash(token))
        if member.disabled or expires is None or expires <= self._clock():
            raise invalid
        return self._view(member)

    def sign_out(self, staff_id: UUID, token: str) -> None:
        try:
            member = self._member(staff_id)
        except StaffNotFound:
            return
        hashed = token_hash(token)
        if hashed in member.sessions:
            member._signed_out(session_hash=hashed)
            self.save(member)

    # Internals

    def _fail(self, member: StaffMember, reason: str, now: datetime) -> None:
        member._refused(reason=reason)
        if member.failures >= MAX_FAILURES:
            member._locked_out(until=now + timedelta(minutes=LOCK_MINUTES))
        self.save(member)

    def _check_enrolment(self, member: StaffMember, token: str) -> None:
        expires = member.enrolment_expires
        if (
            member.disabled
            or not member.enrolment_hash
            or not hmac.compare_digest(member.enrolment_hash, token_hash(token))
            or expires is None
            or expires <= self._clock()
        ):
            raise EnrolmentInvalid("this enrolment link is not valid")

    def _enrolment_expiry(self) -> datetime:
        return self._clock() + timedelta(hours=ENROLMENT_HOURS)

    def _member(self, staff_id: UUID) -> StaffMember:
        return self._member_or(staff_id, StaffNotFound(f"no staff member {staff_id}"))

    def _member_or(self, staff_id: UUID, missing: Exception) -> StaffMember:
        try:
            member: object = self.repository.get(staff_id)
        except AggregateNotFoundError:
            raise missing from None
        if not isinstance(member, StaffMember):
            raise missing
        return member

    def _roster(self) -> StaffRoster:
        try:
            roster: object = self.repository.get(_ROSTER_ID)
        except AggregateNotFoundError:
            return StaffRoster()
        assert isinstance(roster, StaffRoster)
        return roster

    def _view(self, member: StaffMember) -> StaffView:
        now = self._clock()
        locked = member.locked_until if member.locked_until and member.locked_until > now else None
        return StaffView(
            id=member.id,
            email=member.email,
            name=member.name,
            role=StaffRole(member.role),
            enrolled=member.enrolled,
            disabled=member.disabled,
            locked_until=locked,
            active_sessions=len(member.active_sessions(now)),
            added_at=member.created_on,
            version=member.version,
        )


def _normalise(email: str) -> str:
    return email.strip().lower()


def _looks_like_email(address: str) -> bool:
    local, _, domain = address.partition("@")
    return (
        0 < len(local) <= 64
        and "." in domain
        and len(address) <= 254
        and not any(c.isspace() for c in address)
        and "@" not in domain
    )
