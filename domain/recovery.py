"""Recovery: a person who lost the access code sets a new one through a link sent by email.

A service beside the Registry, as Casework and Documents are: it owns the rules of recovery (who
may ask, how long a link works, that it works once) and writes through `Registry.decide`, so
idempotency, conflicts and group commit behave as for every other change to a case.

Asking records `Case.RecoveryRequested` only when the details match a case with an email address
on file; the notifier, a follower of the log, sends the link. Whether anything matched is never
returned, so the answer to a wrong reference or date of birth is the answer to the right ones.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from domain.case import Case
from domain.errors import (
    CaseNotFound,
    InvalidValue,
    RecoveryLinkInvalid,
    RecoveryLinkUsed,
    SignInFailed,
)
from domain.identity import (
    ACCESS_CODE_HASH_KEY,
    ACCESS_CODE_KEY,
    CASE_ID_KEY,
    RECOVERY_LINK_KEY,
    access_code_for,
    case_id_for,
    derive_key,
    hash_access_code,
    new_recovery_request_id,
    parse_recovery_token,
    parse_reference,
    recovery_token,
)
from domain.registry import Registry
from domain.values import APPLICANT, LANGUAGES, CaseView, Identity, Step

DEFAULT_LINK_MINUTES = 30
RATE_KEY = "recovery-rate"


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Recovered:
    """A new access code, shown once (and again to a retry of the same request)."""

    case_id: UUID
    reference: str
    access_code: str
    replayed: bool


class Recovery:
    """Ask for a recovery link with the reference (or passport details) and date of birth;
    follow it to set a new access code, which replaces the old one."""

    def __init__(
        self,
        registry: Registry,
        *,
        secret: bytes,
        link_minutes: int = DEFAULT_LINK_MINUTES,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if link_minutes < 1:
            raise ValueError("a recovery link must work for at least a minute")
        self._registry = registry
        # The Registry derives the same keys from the same secret (domain.identity's labels).
        self._identity_key = derive_key(secret, CASE_ID_KEY)
        self._code_key = derive_key(secret, ACCESS_CODE_KEY)
        self._code_hash_key = derive_key(secret, ACCESS_CODE_HASH_KEY)
        self._link_key = derive_key(secret, RECOVERY_LINK_KEY)
        self._rate_key = derive_key(secret, RATE_KEY)
        self.link_lifetime = timedelta(minutes=link_minutes)
        self._clock = clock

    def request(
        self,
        *,
        date_of_birth: date,
        language: str,
        reference: str | None = None,
        passport: tuple[str, str] | None = None,
        now: datetime | None = None,
    ) -> None:
        """Record a recovery request on each case these details open, if any; say nothing.

        `passport` is (number, issuing country); it finds the person's case in any intake.
        """
        if language not in LANGUAGES:
            raise InvalidValue("language", f"must be one of {', '.join(LANGUAGES)}")
        if (reference is None) == (passport is None):
            raise InvalidValue("reference", "give a reference or passport details, not both")
        expires_at = (now or self._clock()) + self.link_lifetime
        for case_id in self._matching(reference, passport, date_of_birth):
            self._record_request(case_id, new_recovery_request_id(), expires_at, language)

    def check(self, token: str, *, now: datetime | None = None) -> None:
        """Raise what `reset` would refuse this link with now, changing nothing (the page a
        link opens says at once that it is spent, before anyone presses its button)."""
        case_id, request_id = self._parse(token)
        try:
            case: object = self._registry.repository.get(case_id)
        except AggregateNotFoundError:
            raise RecoveryLinkInvalid("no case has this recovery link") from None
        if not isinstance(case, Case):
            raise RecoveryLinkInvalid("no case has this recovery link")
        case.check_recovery(request_id, now or self._clock())

    def reset(self, token: str, *, idempotency_key: str, now: datetime | None = None) -> Recovered:
        """Set a new access code through a recovery link; the old code stops working.

        The code is derived from the request and the idempotency key (as at registration), so a
        retry of the same request shows the same code; any other use of a spent link is refused.
        """
        case_id, request_id = self._parse(token)
        code = access_code_for(self._code_key, case_id, f"reset:{request_id}:{idempotency_key}")
        code_hash = hash_access_code(self._code_hash_key, case_id, code)
        moment = now or self._clock()
        try:
            outcome = self._registry.decide(
                case_id,
                "reset_access_code",
                None,
                idempotency_key,
                lambda case: case.reset_access_code(
                    request_id, code_hash, moment, idempotency_key, APPLICANT
                ),
            )
        except CaseNotFound:  # a genuine token names a case that exists: only a bug gets here
            raise RecoveryLinkInvalid("no case has this recovery link") from None
        reference = self._registry.get_case(case_id).reference
        if outcome.replayed:
            try:
                self._registry.sign_in(reference, code)
            except SignInFailed:  # the key was used with another link, or a later reset won
                raise RecoveryLinkUsed("this recovery link was already used") from None
        return Recovered(case_id, reference, code, outcome.replayed)

    def link_token(self, case_id: UUID, request_id: str) -> str:
        """The token of the link for a recorded request (what the notifier puts in the email)."""
        return recovery_token(self._link_key, case_id, request_id)

    def rate_key(
        self, *, reference: str | None = None, passport: tuple[str, str] | None = None
    ) -> str:
        """One opaque key per person, whether they give the reference or the passport details,
        and whether or not a case exists: for limiting requests per case, not per address."""
        if reference is not None:
            try:
                about = self._registry.get_case(self._registry.find_case(reference)).answers[
                    Step.ABOUT_YOU.value
                ]
            except CaseNotFound:
                subject = f"reference|{parse_reference(reference) or reference.strip().upper()}"
                return self._digest(subject)
            passport = (str(about["passport_number"]), str(about["passport_country"]))
        if passport is None:
            raise InvalidValue("reference", "give a reference or passport details")
        number = "".join(ch for ch in passport[0].upper() if ch.isalnum())
        return self._digest(f"passport|{number}|{passport[1].strip().upper()}")

    # Internals

    def _record_request(
        self, case_id: UUID, request_id: str, expires_at: datetime, language: str
    ) -> None:
        self._registry.decide(
            case_id,
            "request_recovery",
            None,
            secrets.token_urlsafe(24),  # each request is new: there is nothing to converge on
            lambda case: case.request_recovery(request_id, expires_at, language, APPLICANT),
        )

    def _matching(
        self, reference: str | None, passport: tuple[str, str] | None, date_of_birth: date
    ) -> list[UUID]:
        if reference is not None:
            try:
                found = [self._registry.get_case(self._registry.find_case(reference))]
            except CaseNotFound:
                return []
            about = found[0].answers.get(Step.ABOUT_YOU.value, {})
            if about.get("date_of_birth") != date_of_birth.isoformat():
                return []
        else:
            assert passport is not None
            identity = Identity(
                passport_number=passport[0],
                passport_country=passport[1].strip().upper(),
                date_of_birth=date_of_birth,
            )
            found = []
            for intake in self._registry.list_intakes():
                try:
                    found.append(
                        self._registry.get_case(
                            case_id_for(self._identity_key, intake.id, identity)
                        )
                    )
                except CaseNotFound:
                    continue
        return [case.id for case in found if _email_on_file(case)]

    def _parse(self, token: str) -> tuple[UUID, str]:
        parsed = parse_recovery_token(self._link_key, token)
        if parsed is None:
            raise RecoveryLinkInvalid("this is not a recovery link of this service")
        return parsed

    def _digest(self, subject: str) -> str:
        return hmac.new(self._rate_key, subject.encode(), hashlib.sha256).hexdigest()[:32]


def _email_on_file(case: CaseView) -> bool:
    """A link can only be sent to a case that gave an email address (the contact step)."""
    return bool(case.answers.get(Step.CONTACT.value, {}).get("email"))
