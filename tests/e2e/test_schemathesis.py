"""schemathesis against the OpenAPI document, signed in as an applicant (issue 11, must-hold 5).

Every applicant operation of the document gets generated requests, valid by the document
(schemathesis' positive mode) and a sample of invalid ones, sent to the app over WSGI with an
applicant's session cookie. No request may get a server error, and fewer than 10% of the valid
ones may be refused by a validation (400 or 422) the document does not state.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402

from domain.identity import (  # noqa: E402
    ALPHABET,
    REFERENCE_LENGTH,
    _check_character,
    format_reference,
)
from tests.conftest import about_you, make_app  # noqa: E402
from web.openapi import REFERENCE_FORMAT  # noqa: E402

pytestmark = pytest.mark.slow

STAFF = "/api/v1/staff"
REFUSED = {400, 422}
EXAMPLES = 25


@schemathesis.serializer("application/offset+octet-stream")
def _tus_chunk(ctx: Any, value: Any) -> bytes:
    """A tus PATCH's chunk: the generated binary as it is."""
    return value if isinstance(value, bytes) else str(value).encode()


@st.composite
def references(draw: st.DrawFn) -> str:
    """Well-formed references (eight symbols and their check symbol), as a client knowing the
    document's `carepath-reference` format would send them."""
    body = draw(st.text(alphabet=ALPHABET, min_size=REFERENCE_LENGTH, max_size=REFERENCE_LENGTH))
    return format_reference(body + _check_character(body))


schemathesis.openapi.format(REFERENCE_FORMAT, references())


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Any:
    data = tmp_path_factory.mktemp("schemathesis") / "data"
    app = make_app({"CAREPATH_DATA_DIR": str(data), "CAREPATH_SECRET": "t" * 40}, capacity=100)
    yield app
    app.extensions["carepath.registry"].close()


@pytest.fixture(scope="module")
def applicant_cookie(app) -> dict[str, str]:
    """The session cookie of an applicant registered through the API."""
    client = app.test_client()
    answered = client.post(
        "/api/v1/intakes/test/registrations",
        json=about_you(1),
        headers={"Idempotency-Key": "schemathesis-registration-1"},
    )
    assert answered.status_code == 201, answered.text
    cookie = client.get_cookie("carepath_session")
    assert cookie is not None
    return {"carepath_session": cookie.value}


def applicant_operations(app) -> list[Any]:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith("/staff") and operation.method.upper() != "DELETE":
            operations.append(operation)
    return operations


@dataclass
class Tally:
    """What came back: requests sent per mode, server errors, and valid requests refused."""

    seen: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    by_syntax: list[str] = field(default_factory=list)
    by_domain: list[str] = field(default_factory=list)


def explore(operation: Any, mode: Any, cookies: dict[str, str], tally: Tally) -> None:
    """Send EXAMPLES generated requests of one operation in one mode, noting what came back."""
    from schemathesis.generation.modes import GenerationMode

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same requests every run: a figure to compare, never a flake
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call(cookies=cookies)
        tally.seen[mode.value] += 1
        if mode is GenerationMode.POSITIVE:
            tally.statuses[response.status_code] += 1
        if response.status_code >= 500:
            tally.errors.append(f"{operation.label} -> {response.status_code}: {case.body!r}")
        elif mode is GenerationMode.POSITIVE and response.status_code in REFUSED:
            try:
                answer = response.json()
            except ValueError:
                answer = {}
            line = f"{operation.label} {','.join(sorted(answer.get('errors', {})))}"
            # A `code` names a domain error: the request was well formed and the case's state
            # refused it (an item not on this intake's checklist). Without one, the web layer's
            # own rules refused it. Both count as refused by what the document does not state.
            refused = tally.by_domain if "code" in answer else tally.by_syntax
            refused.append(f"{line} -> {response.text[:300]}")

    try:
        run()
    except Unsatisfiable:
        # nothing can be invalid in a request without parameters or body (GET /intakes)
        assert mode is not GenerationMode.POSITIVE, operation.label


def summary(lines: list[str]) -> list[str]:
    """One line per kind of refusal (operation and fields), most frequent first, with an example."""
    kinds = Counter(line.split(" -> ")[0] for line in lines)
    example = {line.split(" -> ")[0]: line for line in reversed(lines)}
    return [f"{count} x {example[kind]}" for kind, count in kinds.most_common()]


def test_no_server_error_and_few_valid_requests_refused(app, applicant_cookie):
    from schemathesis.generation.modes import GenerationMode

    tally = Tally()
    operations = applicant_operations(app)
    assert len(operations) >= 12, [op.label for op in operations]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            explore(operation, mode, applicant_cookie, tally)
    assert tally.errors == [], "\n".join(tally.errors[:20])
    valid = tally.seen["positive"]
    refused = tally.by_syntax + tally.by_domain
    print(
        f"\n{len(operations)} operations; {valid} valid and {tally.seen['negative']} invalid "
        f"requests, no server error; valid ones refused: {len(refused)} ({len(refused) / valid:.1%}), "
        f"{len(tally.by_syntax)} by the web layer's rules, {len(tally.by_domain)} by the domain"
    )
    print("valid requests by status:", dict(sorted(tally.statuses.items())))
    print("\n".join(summary(refused)))
    assert len(refused) / valid < 0.10, "\n".join(summary(refused))
