"""The canonical record behind each Merkle leaf: every event field is classified, protected fields
are committed through salted hashes, and a redacted export line still proves its leaf."""

from __future__ import annotations

import importlib
import json
import pkgutil
from typing import Any

import pytest
from eventsourcing.domain import DomainEvent

import domain
from domain.evidence import (
    CLEAR,
    COMMITMENT,
    PERSONAL,
    SECRET,
    check_line,
    export_line,
    protection,
    record_of,
    salt_key,
)

KEY = salt_key(b"k" * 40)
LIBRARY_FIELDS = {
    "originator_id",
    "originator_version",
    "originator_id_type",
}  # stored beside the state, not in it


def event_classes() -> list[type[Any]]:
    for module in pkgutil.iter_modules(domain.__path__):
        importlib.import_module(f"domain.{module.name}")
    found, todo = [], [DomainEvent]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("domain."):
            found.append(cls)
    return found


def topic_of(cls: type[Any]) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def fields_of(cls: type[Any]) -> set[str]:
    names: set[str] = set()
    for base in cls.__mro__:
        names.update(getattr(base, "__annotations__", {}))
    return names - LIBRARY_FIELDS


def test_every_field_of_every_stored_event_class_is_classified() -> None:
    unclassified = sorted(
        f"{topic_of(cls)}.{name}"
        for cls in event_classes()
        for name in fields_of(cls)
        if protection(topic_of(cls), name) == "clear" and name not in CLEAR
    )

    assert len(event_classes()) > 40
    assert unclassified == []


def test_the_classification_names_fields_that_exist() -> None:
    known = {
        key
        for cls in event_classes()
        for name in fields_of(cls)
        for key in (
            f"{cls.__qualname__.partition('.')[0]}.{name}",
            f"{cls.__qualname__}.{name}",
        )
    }

    assert sorted((PERSONAL | SECRET) - known) == []


def registered(**changes: Any) -> bytes:
    state = {
        "timestamp": {"_type_": "datetime_iso", "_data_": "2026-12-06T12:00:00+00:00"},
        "intake_id": {"_type_": "uuid_hex", "_data_": "ab" * 16},
        "reference": "TWW9-FEF3-Z",
        "access_code_hash": "scrypt$secret",
        "answers": {"given_name": "Maria", "date_of_birth": "1980-01-02"},
        "language": "fr",
        **changes,
    }
    return json.dumps(state).encode()


def a_record(plaintext: bytes | None = None) -> Any:
    return record_of(
        "Registry",
        "0bf6ac5a-6b85-5f03-ba36-22be3d098b49",
        1,
        "domain.case:Case.Registered",
        plaintext or registered(),
        KEY,
    )


def test_personal_and_secret_fields_are_committed_and_clear_ones_kept() -> None:
    found = a_record()

    assert found.state["reference"] == "TWW9-FEF3-Z"
    assert set(found.state["answers"]) == {COMMITMENT}
    assert set(found.state["access_code_hash"]) == {COMMITMENT}
    assert "Maria" not in found.canonical().decode()
    assert found.timestamp() == "2026-12-06T12:00:00+00:00"


@pytest.mark.parametrize("redact", [False, True])
def test_an_export_line_proves_its_leaf_full_or_redacted(redact: bool) -> None:
    line = json.loads(export_line(a_record(), 0, 1, redact=redact))

    assert list(check_line(line)) == []
    assert ("Maria" in json.dumps(line, ensure_ascii=False)) is not redact
    assert "scrypt$secret" not in json.dumps(line)  # a secret is never shown
    assert line["leaf_hash"] == a_record().leaf().hex()


def test_a_changed_value_or_record_in_an_export_line_is_caught() -> None:
    line = json.loads(export_line(a_record(), 0, 1, redact=False))
    line["disclosed"]["answers"]["value"]["given_name"] = "Marie"
    other = json.loads(export_line(a_record(), 0, 1, redact=True))
    other["state"]["language"] = "en"

    assert list(check_line(line)) == ["answers does not match its commitment"]
    assert list(check_line(other)) == ["the record does not hash to its leaf"]


def test_salts_differ_per_event_so_equal_answers_do_not_show_as_equal() -> None:
    first = a_record()
    second = record_of(
        "Registry", "9f6ac5a0-6b85-5f03-ba36-22be3d098b49", 1, first.topic, registered(), KEY
    )

    assert first.state["answers"] != second.state["answers"]
