"""The errors carepath's domain raises; web/errors.py maps each to a status code and a message."""

from __future__ import annotations


class CarepathError(Exception):
    """Raised when a command breaks a rule of the domain."""


class NotFoundError(CarepathError):
    """Raised when something asked for does not exist."""


class IntakeNotFound(NotFoundError):
    """Raised when no intake has the given code or id."""


class CaseNotFound(NotFoundError):
    """Raised when no case has the given id."""


class ConflictError(CarepathError):
    """Raised when a command conflicts with what is already recorded."""


class IntakeAlreadyDefined(ConflictError):
    """Raised when an intake with the same code already exists."""


class IntakeNotOpen(ConflictError):
    """Raised when registering in an intake that is not open for registrations."""


class IntakeStateError(ConflictError):
    """Raised when opening or closing an intake that is not in a state that allows it."""


class DuplicateRegistration(ConflictError):
    """Raised when the same person registers a second time in the same intake."""


class StaleVersion(ConflictError):
    """Raised when a command was made from a version of the case that is no longer current."""

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"case is at version {actual}, not {expected}")
        self.expected = expected
        self.actual = actual


class IdempotencyKeyReused(ConflictError):
    """Raised when an idempotency key already used for one command comes with another."""


class CaseClosed(ConflictError):
    """Raised when changing a case that is submitted or withdrawn."""


class IncompleteRegistration(ConflictError):
    """Raised when submitting a registration before every step is saved."""

    def __init__(self, missing: tuple[str, ...]) -> None:
        super().__init__(f"steps not saved: {', '.join(missing)}")
        self.missing = missing


class IdentityLocked(ConflictError):
    """Raised when a saved step tries to change the identity that the case id is derived from."""


class SignInFailed(CarepathError):
    """Raised when a reference and access code do not match a case (never says which was wrong)."""


class InvalidValue(CarepathError):
    """Raised when a command gets a value no form should have sent (unknown step, bad number)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class AllocationError(CarepathError):
    """Raised when an allocation decision would break the ledger's rules (a bug, never input)."""


class CaseActionRefused(ConflictError):
    """Raised when an officer action does not fit where the case is (e.g. approving a draft)."""


class NoOpenRequest(ConflictError):
    """Raised when answering an information request that is not open."""


class StaffNotFound(NotFoundError):
    """Raised when no staff member has the given email or id."""


class StaffAlreadyExists(ConflictError):
    """Raised when adding a staff member whose email is already on the roster."""


class StaffSignInFailed(CarepathError):
    """Raised when an email, password or second-factor code does not match (never says which)."""


class StaffLockedOut(StaffSignInFailed):
    """Raised when signing in to an account locked after repeated failures."""

    def __init__(self, until: object) -> None:
        super().__init__(f"locked until {until}")
        self.until = until


class EnrolmentInvalid(CarepathError):
    """Raised when an enrolment link is unknown, used, superseded or expired."""


class StaffSessionInvalid(CarepathError):
    """Raised when a staff session is unknown, signed out, revoked or expired."""


class NotPermitted(CarepathError):
    """Raised when a staff member's role does not allow the action."""


class DocumentRefused(CarepathError):
    """Raised when an uploaded file breaks a rule: size, type, content or name."""

    def __init__(self, code: str, message: str, **params: str) -> None:
        super().__init__(message)
        self.code = code  # e.g. too_large, wrong_type, pdf_active_content, bad_name (the web's)
        self.message = message
        self.params = params  # for the translated message: mb (the limit), types


class DocumentNotFound(NotFoundError):
    """Raised when a case has no document with that id, or the blob of a digest is missing."""


class ChecklistItemNotFound(NotFoundError):
    """Raised when a document names an item that is not on the intake's checklist."""


class NotInvited(ConflictError):
    """Raised when stage two is attempted by a case holding no open invitation."""


class DeadlinePassed(ConflictError):
    """Raised when stage two is attempted after the invitation's deadline."""


class ApplicationIncomplete(ConflictError):
    """Raised when stage two is submitted with sections or required documents missing."""

    def __init__(self, sections: tuple[str, ...], items: tuple[str, ...]) -> None:
        super().__init__(f"missing sections {sections}, documents {items}")
        self.sections = sections
        self.items = items


class ScannerUnavailable(CarepathError):
    """Raised when the virus scanner cannot be reached or gives no verdict."""


class RecoveryLinkInvalid(CarepathError):
    """Raised when a recovery link's token was not made by this server (mistyped or forged)."""


class RecoveryLinkUsed(RecoveryLinkInvalid):
    """Raised when a recovery link was already used or a newer request replaced it."""


class RecoveryLinkExpired(RecoveryLinkInvalid):
    """Raised when a recovery link is followed after its time ran out."""


class DeliveryFailed(CarepathError):
    """Raised when an email could not be handed over; `permanent` if trying again cannot help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class MessageNotRetryable(ConflictError):
    """Raised when a message that is not rejected or abandoned is asked to be tried again."""


class MessageNotBounceable(ConflictError):
    """Raised when a bounce is reported for a message that was never delivered to the relay."""
