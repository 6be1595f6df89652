"""`carepath audit verify|export|checkpoints|checkpoint|key` on a fresh SQLite data folder: the
export and the published checkpoints check out with the independent verifier
(tests/independent/verify_export.py, written from the README), redacted or not; tampering shows."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from carepath.cli import cli
from domain.registry import Registry
from projections.persistence import application_env
from projections.worker import Worker
from tests.conftest import submit_person
from tests.integration.tamper import StoredLog

VERIFIER = Path(__file__).resolve().parent.parent / "independent" / "verify_export.py"


@pytest.fixture
def run(sqlite_env, monkeypatch):
    for key in ("PERSISTENCE_MODULE", "POSTGRES_DBNAME", "CAREPATH_VIEWS_URL"):
        monkeypatch.delenv(key, raising=False)
    runner = CliRunner(env={**sqlite_env, "CAREPATH_CHECKPOINT_EVERY": "20"})

    def invoke(*args):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    assert invoke("db", "init").exit_code == 0
    assert (
        invoke("intake", "create", "--code", "audit", "--name", "A", "--capacity", "3").exit_code
        == 0
    )
    assert invoke("intake", "open", "audit").exit_code == 0
    registry = Registry(
        env=application_env(sqlite_env, Registry.name, create_table=False),
        secret=sqlite_env["CAREPATH_SECRET"].encode(),
    )
    try:
        for n in range(6):
            submit_person(registry, "audit", n)
    finally:
        registry.close()
    assert invoke("intake", "close", "audit").exit_code == 0
    worker = Worker({**sqlite_env, "CAREPATH_CHECKPOINT_EVERY": "20"}, b"s" * 40)
    worker.settle()
    assert worker.settle_trees() > 40
    return invoke


def independent(tmp_path, export: str, checkpoints: str, *extra: str):
    (tmp_path / "log.jsonl").write_text(export)
    (tmp_path / "checkpoints.txt").write_text(checkpoints)
    return subprocess.run(
        [
            sys.executable,
            "-I",
            str(VERIFIER),
            str(tmp_path / "log.jsonl"),
            str(tmp_path / "checkpoints.txt"),
            *extra,
        ],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("redact", [False, True])
def test_an_export_verifies_against_the_published_checkpoints_independently(run, tmp_path, redact):
    assert run("audit", "checkpoint").exit_code == 0
    published = run("audit", "checkpoints")
    vkey = run("audit", "key").stdout.strip()
    exported = run("audit", "export", *(["--redact"] if redact else []))

    assert exported.exit_code == 0
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert {line["application"] for line in lines} >= {"Registry", "Allocator"}
    assert ("P00000003" in exported.stdout) is not redact  # a passport number
    assert "access_code_hash" in exported.stdout  # committed, its value never shown
    checked = independent(tmp_path, exported.stdout, published.stdout, "--verifier", vkey)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 problems" in checked.stdout
    # intake opened, closed, every 20 events, and on demand: several per log
    assert published.stdout.count("\u2014 carepath.local ") >= 4


def test_a_changed_export_line_fails_the_independent_check(run, tmp_path):
    run("audit", "checkpoint")
    exported = run("audit", "export").stdout.splitlines()
    line = json.loads(exported[5])
    line["state"]["actor"] = "someone else"
    exported[5] = json.dumps(line)

    checked = independent(tmp_path, "\n".join(exported), run("audit", "checkpoints").stdout)

    assert checked.returncode == 1
    assert "Registry 5: the record does not hash to its leaf" in checked.stdout


def test_verify_is_clean_then_names_the_position_of_a_flipped_byte(run, sqlite_env):
    clean = run("audit", "verify")
    assert clean.exit_code == 0, clean.output
    assert clean.stdout.strip().splitlines()[-1].endswith("events/s): clean")

    with StoredLog.open(sqlite_env, "Registry") as log:
        log.flip(random.Random(3), log.ids()[9])
    found = run("audit", "verify", "--log", "Registry")

    assert found.exit_code == 1
    assert "FOUND Registry position 9 (notification id 10)" in found.stdout
    assert found.stdout.strip().splitlines()[-1].endswith(" findings")


def test_export_until_stops_at_the_time_given(run):
    lines = [json.loads(x) for x in run("audit", "export", "--log", "Registry").stdout.splitlines()]
    cut = lines[10]["timestamp"]

    until = run("audit", "export", "--log", "Registry", "--until", cut)

    assert [json.loads(x)["index"] for x in until.stdout.splitlines()] == list(range(11))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("verify", "--log", "Ledger"), "'Ledger' is not one of Registry, Allocator"),
        (("export", "--until", "yesterday"), "'yesterday' is not an ISO date-time"),
        (("export", "--until", "2026-12-06T12:00"), "give the time with its offset"),
    ],
)
def test_bad_options_are_refused_with_the_reason(run, args, message):
    refused = run("audit", *args)

    assert refused.exit_code == 2
    assert message in refused.output
