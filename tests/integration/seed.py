"""Many submitted registrations, fast: Case aggregates built in memory and saved in big batches.

The same events the web journey records (Registered, two StepSaved, Submitted, and the reference
pointer), without HTTP or one transaction per step, so a test can start from 45,000 entries.
"""

from __future__ import annotations

import hashlib
from uuid import UUID

from domain.case import Case, CaseReference
from domain.identity import case_id_for, derive_key, format_reference
from domain.registry import Registry
from domain.values import APPLICANT, Identity, Step
from tests.conftest import about_you

STEPS = {
    Step.CONTACT: {"email": "a@example.org", "phone": "+1 555 0100", "country_of_residence": "CA"},
    Step.ELIGIBILITY: {
        "language_level": 5,
        "care_months": 24,
        "education": "secondary",
        "consent": True,
    },
}


def reference_for(n: int) -> str:
    # Deterministic and unique per n: 8 symbols from the number, and a check character.
    from domain.identity import ALPHABET, _check_character

    body = ""
    value = n
    for _ in range(8):
        value, index = divmod(value, len(ALPHABET))
        body += ALPHABET[index]
    return format_reference(body + _check_character(body))


def submitted_case(registry_secret: bytes, intake_id: UUID, n: int, pool: str) -> list[object]:
    answers = about_you(n)
    identity = Identity(
        answers["passport_number"],
        answers["passport_country"],
        __import__("datetime").date.fromisoformat(answers["date_of_birth"]),
    )
    case_id = case_id_for(derive_key(registry_secret, "case-id"), intake_id, identity)
    reference = reference_for(n)
    case = Case(
        id=case_id,
        intake_id=intake_id,
        reference=reference,
        access_code_hash=hashlib.sha256(str(n).encode()).hexdigest(),
        answers=answers,
        language="en",
        idempotency_key=f"seed-r-{n}",
        actor=APPLICANT,
        pool=pool,
    )
    for step, values in STEPS.items():
        case.save_step(step, values, "en", f"seed-{step.value}-{n}", APPLICANT)
    case.submit("en", f"seed-s-{n}", APPLICANT)
    return [case, CaseReference(reference=reference, case_id=case_id)]


def seed_submitted(
    registry: Registry,
    secret: bytes,
    intake_code: str,
    count: int,
    *,
    start: int = 0,
    batch: int = 250,
    pool: str = "general",
) -> list[UUID]:
    """Save `count` submitted registrations into the intake, `batch` people per transaction."""
    intake_id = registry.get_intake(intake_code).id
    ids: list[UUID] = []
    for first in range(start, start + count, batch):
        aggregates: list[object] = []
        for n in range(first, min(first + batch, start + count)):
            aggregates.extend(submitted_case(secret, intake_id, n, pool))
        registry.save(*aggregates)
        ids.extend(a.id for a in aggregates if isinstance(a, Case))
    return ids
