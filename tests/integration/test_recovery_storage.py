"""Recovery on real storage (SQLite and PostgreSQL): the request and the reset are recorded,
read back by another process's Registry, and the stored events survive a reload as written."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from domain.case import Case
from domain.errors import RecoveryLinkUsed, SignInFailed
from domain.recovery import Recovery
from tests.conftest import CONTACT, about_you
from tests.recovery_helpers import recovery_requests_of, recovery_token_of
from web.settings import Settings

NOW = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request: pytest.FixtureRequest) -> dict[str, str]:
    return dict(
        request.getfixturevalue("postgres_db" if request.param == "postgres" else "sqlite_env")
    )


def test_a_reset_recorded_by_one_registry_is_what_another_reads(storage: dict[str, Any]) -> None:
    settings = Settings.from_environ({"ENV": storage})
    first = settings.build_registry(create_table=True)
    try:
        first.define_intake(
            code="test", name="Test", stream="outside", capacity=5, policy="first_come", actor="t"
        )
        first.open_intake("test", actor="t")
        done = first.register("test", about_you(1), language="fr", idempotency_key="r" * 24)
        first.save_step(
            done.case_id,
            "contact",
            CONTACT,
            expected_version=1,
            language="fr",
            idempotency_key="c" * 24,
        )
        recovery = settings.build_recovery(first)
        recovery.request(
            passport=("P00000001", "PH"), date_of_birth=date(1985, 4, 27), language="fr", now=NOW
        )
        token = recovery_token_of(first, settings.secret, done.case_id)
        recovered = recovery.reset(token, idempotency_key="k" * 24, now=NOW + timedelta(minutes=1))
    finally:
        first.close()

    second = settings.build_registry(create_table=False)
    try:
        [requested] = recovery_requests_of(second, done.case_id)
        assert requested.expires_at == NOW + timedelta(minutes=30)
        assert requested.language == "fr"
        assert isinstance(
            list(second.repository.event_store.get(done.case_id))[-1], Case.AccessCodeReset
        )
        assert second.sign_in(done.reference, recovered.access_code) == done.case_id
        with pytest.raises(SignInFailed):
            second.sign_in(done.reference, done.access_code)
        with pytest.raises(RecoveryLinkUsed):
            Recovery(second, secret=settings.secret).reset(
                token, idempotency_key="z" * 24, now=NOW + timedelta(minutes=2)
            )
    finally:
        second.close()
