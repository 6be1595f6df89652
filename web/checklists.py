"""An intake's stage two from a small TOML or JSON file: its checklist, sections and limits.

    sections = ["work_history", "language_test", "education", "job_offer"]
    case_document_mb = 100

    [[item]]
    key = "identity"
    name_en = "Identity document (passport)"
    name_fr = "Pièce d'identité (passeport)"
    required = true
    types = ["pdf", "jpeg", "png"]
    max_mb = 10
    max_files = 5

The Registry checks what the values mean; this module only reads the file's shape.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domain.values import (
    DEFAULT_CASE_DOCUMENT_BYTES,
    DEFAULT_SECTIONS,
    MB,
    ChecklistItem,
)

ITEM_KEYS = {"key", "name_en", "name_fr", "required", "types", "max_mb", "max_files"}
TOP_KEYS = {"sections", "case_document_mb", "item"}


class ChecklistFileError(ValueError):
    """Raised when a checklist file cannot be read or has the wrong shape."""


@dataclass(frozen=True)
class StageTwoDefinition:
    checklist: tuple[ChecklistItem, ...]
    sections: tuple[str, ...]
    case_document_bytes: int


def read_checklist(path: Path) -> StageTwoDefinition:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as unreadable:
        raise ChecklistFileError(f"cannot read {path}: {unreadable}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as bad:
        kind = "JSON" if path.suffix == ".json" else "TOML"
        raise ChecklistFileError(f"{path.name} is not valid {kind}: {bad}") from None
    if not isinstance(data, dict):
        raise ChecklistFileError("the file must hold a table (TOML) or an object (JSON)")
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise ChecklistFileError(f"unknown keys {', '.join(sorted(unknown))}")
    items = data.get("item", [])
    if not isinstance(items, list):
        raise ChecklistFileError("'item' must be a list of tables")
    sections = data.get("sections", list(DEFAULT_SECTIONS))
    if not isinstance(sections, list) or not all(isinstance(s, str) for s in sections):
        raise ChecklistFileError("'sections' must be a list of section names")
    case_mb = data.get("case_document_mb", DEFAULT_CASE_DOCUMENT_BYTES / MB)
    if not isinstance(case_mb, int | float) or isinstance(case_mb, bool):
        raise ChecklistFileError("'case_document_mb' must be a number")
    return StageTwoDefinition(
        checklist=tuple(_item(n, raw) for n, raw in enumerate(items, start=1)),
        sections=tuple(sections),
        case_document_bytes=int(case_mb * MB),
    )


def _item(n: int, raw: Any) -> ChecklistItem:
    if not isinstance(raw, dict):
        raise ChecklistFileError(f"item {n} must be a table")
    unknown = set(raw) - ITEM_KEYS
    missing = {"key", "name_en", "name_fr"} - set(raw)
    if unknown or missing:
        problems = [f"unknown {', '.join(sorted(unknown))}"] if unknown else []
        problems += [f"missing {', '.join(sorted(missing))}"] if missing else []
        raise ChecklistFileError(f"item {n}: {'; '.join(problems)}")
    types, max_mb = raw.get("types", ["pdf", "jpeg", "png"]), raw.get("max_mb", 10)
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise ChecklistFileError(f'item {n}: \'types\' must be a list like ["pdf", "png"]')
    if not isinstance(max_mb, int | float) or isinstance(max_mb, bool):
        raise ChecklistFileError(f"item {n}: 'max_mb' must be a number")
    max_files = raw.get("max_files", 5)
    if not isinstance(max_files, int) or isinstance(max_files, bool):
        raise ChecklistFileError(f"item {n}: 'max_files' must be a whole number")
    return ChecklistItem(
        key=str(raw["key"]),
        name_en=str(raw["name_en"]),
        name_fr=str(raw["name_fr"]),
        required=bool(raw.get("required", True)),
        types=tuple(types),
        max_bytes=int(max_mb * MB),
        max_files=max_files,
    )
