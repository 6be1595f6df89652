"""Shared fixtures: an in-memory Registry, a Flask app on SQLite, and throw-away PostgreSQL databases."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from domain.registry import Registry

# Tests have no network: a lottery opened without naming a beacon draws from an operator's
# value (tests of the beacon name it and serve its rounds locally).
os.environ.setdefault("DRAW_BEACON", "none")
os.environ.setdefault("CAREPATH_DRAW_BEACON", "none")

SECRET = b"test-secret-" + b"x" * 32
OPERATOR_VALUE = "5eed" * 16


def close_and_draw(registry: Registry, code: str, value: str = OPERATOR_VALUE) -> None:
    """Close an intake and, for a lottery without a beacon, record the draw's value."""
    registry.close_intake(code, actor="t")
    found = registry.get_intake(code)
    if found.draw.get("mode") == "operator":
        registry.draw(code, actor="t", operator_value=value)


PG = {"host": "127.0.0.1", "port": "5432", "user": "postgres"}


@pytest.fixture
def registry() -> Iterator[Registry]:
    """A Registry on the in-memory backend, with an open first-come intake called `test`."""
    reg = Registry(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, secret=SECRET)
    reg.define_intake(
        code="test",
        name="Test intake",
        stream="outside",
        capacity=10,
        policy="first_come",
        actor="test",
    )
    reg.open_intake("test", actor="test")
    yield reg
    reg.close()


def about_you(n: int = 1, **changes: Any) -> dict[str, Any]:
    """Valid about-you answers for person number n."""
    answers = {
        "family_name": "Santos",
        "given_names": "Maria Luz",
        "date_of_birth": "1985-04-27",
        "passport_number": f"P{n:08d}",
        "passport_country": "PH",
    }
    answers.update(changes)
    return answers


def submit_person(registry: Registry, code: str, n: int, pool: str = "general") -> Any:
    """Register person n in intake `code`, save every step and submit: the case id."""
    done = registry.register(
        code, about_you(n), language="en", idempotency_key=f"{code}-r{n}", pool=pool
    )
    registry.save_step(
        done.case_id,
        "contact",
        {"email": "a@example.org"},
        expected_version=1,
        language="en",
        idempotency_key=f"{code}-c{n}",
    )
    registry.save_step(
        done.case_id,
        "eligibility",
        {"consent": True},
        expected_version=2,
        language="en",
        idempotency_key=f"{code}-e{n}",
    )
    registry.submit(done.case_id, expected_version=3, language="en", idempotency_key=f"{code}-s{n}")
    return done.case_id


def send_application(registry: Registry, case_id: Any, key: str | None = None) -> Any:
    """Record stage two as sent, whatever the checklist: for tests of what officers do next.

    (tests/unit/test_documents.py tests the rules of stage two themselves.)"""
    key = key or f"send-{case_id}"
    return registry.decide(
        case_id,
        "submit_application",
        None,
        key,
        lambda case: case.submit_application((), (), "en", key, "applicant"),
    )


CONTACT = {"email": "maria@example.org", "phone": "+63 917 123 4567", "country_of_residence": "CA"}
ELIGIBILITY = {
    "language_level": "5",
    "care_months": "24",
    "education": "secondary",
    "consent": "yes",
}


def _pg_connect(dbname: str = "postgres") -> Any:
    import psycopg

    return psycopg.connect(dbname=dbname, autocommit=True, connect_timeout=3, **PG)


def postgres_reachable() -> str | None:
    """None if a PostgreSQL server answers, else why not."""
    try:
        with _pg_connect() as conn:
            conn.execute("SELECT 1")
    except Exception as error:  # noqa: BLE001 - any failure means "not reachable"
        return str(error)
    return None


@pytest.fixture(scope="session")
def postgres_server() -> dict[str, str]:
    """Skips PostgreSQL tests when no server answers, except under CI=true, where they fail."""
    problem = postgres_reachable()
    if problem:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"CI=true and PostgreSQL is not reachable on 127.0.0.1:5432: {problem}")
        pytest.skip(f"PostgreSQL not reachable: {problem}")
    return dict(PG)


@pytest.fixture
def postgres_db(postgres_server: dict[str, str], tmp_path: Any) -> Iterator[dict[str, str]]:
    """A new, empty database for one test, dropped afterwards: the env keys that point at it."""
    name = f"carepath_test_{secrets.token_hex(6)}"
    assert re.fullmatch(r"carepath_test_[0-9a-f]{12}", name)
    with _pg_connect() as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": name,
        "POSTGRES_HOST": postgres_server["host"],
        "POSTGRES_PORT": postgres_server["port"],
        "POSTGRES_USER": postgres_server["user"],
        "POSTGRES_PASSWORD": "",
        "CAREPATH_SECRET": "t" * 40,
        "CAREPATH_DATA_DIR": str(tmp_path / "data"),  # files (draw secrets) stay in the test's
    }
    with _pg_connect() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def sqlite_env(tmp_path: Any) -> dict[str, str]:
    return {"CAREPATH_DATA_DIR": str(tmp_path / "data"), "CAREPATH_SECRET": "s" * 40}


def make_app(env: dict[str, str], *, capacity: int = 10, **config: Any) -> Any:
    """A Flask app on the given storage, with every table and an open intake `test`."""
    from domain.allocator import Allocator
    from domain.notifications import Notifications
    from projections.persistence import application_env
    from projections.views import migrate
    from web import create_app
    from web.settings import Settings

    settings = Settings.from_environ({"ENV": env})
    Allocator(env=application_env(settings.environ, "Allocator", create_table=True)).close()
    Notifications(
        env=application_env(settings.environ, Notifications.name, create_table=True)
    ).close()
    settings.build_staff(create_table=True).close()
    migrate(settings.environ)
    setup = settings.build_registry(create_table=True)
    try:
        setup.define_intake(
            code="test",
            name="Test intake",
            stream="outside",
            capacity=capacity,
            policy="first_come",
            actor="test",
        )
        setup.open_intake("test", actor="test")
    finally:
        setup.close()
    # no recovery timing floor (web/recovery.py) unless a test asks for one
    return create_app(
        {"ENV": env, "RATELIMIT_ENABLED": False, "RECOVERY_FLOOR_SECONDS": 0, **config}
    )


@pytest.fixture
def app(sqlite_env: dict[str, str]) -> Iterator[Any]:
    app = make_app(sqlite_env)
    yield app
    app.extensions["carepath.registry"].close()


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()
