"""Recovery links as the notifier would send them: from the recorded event and the server's key."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.case import Case
from domain.identity import RECOVERY_LINK_KEY, derive_key, recovery_token
from domain.registry import Registry


def recovery_requests_of(registry: Registry, case_id: UUID) -> list[Any]:
    """Every Case.RecoveryRequested recorded on the case, oldest first."""
    return [
        e
        for e in registry.repository.event_store.get(case_id)
        if isinstance(e, Case.RecoveryRequested)
    ]


def recovery_token_of(registry: Registry, secret: bytes, case_id: UUID) -> str:
    """The token of the link of the case's latest recovery request."""
    latest = recovery_requests_of(registry, case_id)[-1]
    return recovery_token(derive_key(secret, RECOVERY_LINK_KEY), case_id, latest.request_id)


def recovery_link_of(registry: Registry, secret: bytes, case_id: UUID) -> str:
    """The path the email's link opens."""
    return f"/recover/{recovery_token_of(registry, secret, case_id)}"
