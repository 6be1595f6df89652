"""The `carepath` command, run in-process with click's runner on a fresh SQLite data folder."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from carepath.cli import cli
from projections.persistence import application_env
from projections.worker import Worker
from tests.conftest import submit_person


@pytest.fixture
def run(sqlite_env, monkeypatch):
    for key in ("PERSISTENCE_MODULE", "POSTGRES_DBNAME", "CAREPATH_VIEWS_URL"):
        monkeypatch.delenv(key, raising=False)
    runner = CliRunner(env=sqlite_env)

    def invoke(*args):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    assert invoke("db", "init").exit_code == 0
    return invoke


def registry_for(env):
    from domain.registry import Registry

    return Registry(
        env=application_env(env, "Registry", create_table=False),
        secret=env["CAREPATH_SECRET"].encode(),
    )


def test_intakes_are_created_opened_listed_and_closed(run):
    created = run(
        "intake",
        "create",
        "--code",
        "hcw-2025",
        "--name",
        "Home Care Worker",
        "--capacity",
        "4700",
        "--pool",
        "alternate_format=100",
    )
    assert created.exit_code == 0, created.output
    assert run("intake", "open", "hcw-2025").exit_code == 0
    listed = run("intake", "list").output
    assert "hcw-2025" in listed
    assert "open" in listed
    assert run("intake", "close", "hcw-2025").exit_code == 0
    assert "closed" in run("intake", "list").output


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--code", "Bad Code", "--name", "N", "--capacity", "5"], "--code"),
        (["--code", "ok-1", "--name", "N", "--capacity", "0"], "--capacity"),
        (["--code", "ok-1", "--name", "N", "--capacity", "x"], "--capacity"),
        (["--code", "ok-1", "--name", "N", "--capacity", "5", "--opens-at", "soon"], "--opens-at"),
        (["--code", "ok-1", "--name", "N", "--capacity", "5", "--pool", "vip"], "--pool"),
        (["--code", "ok-1", "--name", "N", "--capacity", "5", "--pool", "vip=5"], "--pool"),
        (["--code", "ok-1", "--name", "N", "--capacity", "5", "--policy", "fastest"], "--policy"),
        (
            ["--code", "ok-1", "--name", "N", "--capacity", "5", "--time-zone", "EST+5"],
            "--time-zone",
        ),
    ],
)
def test_bad_intake_options_get_an_error_naming_the_option(run, args, named):
    refused = run("intake", "create", *args)
    assert refused.exit_code == 2
    assert named in refused.output
    assert "Traceback" not in refused.output
    assert "no intakes defined" in run("intake", "list").output


def test_an_intake_is_created_in_the_time_zone_given_and_a_bad_zone_is_named(run):
    refused = run(
        "intake",
        "create",
        "--code",
        "west",
        "--name",
        "W",
        "--capacity",
        "5",
        "--time-zone",
        "Canada/Nowhere",
    )
    assert refused.exit_code == 2
    assert "--time-zone" in refused.output
    assert "'Canada/Nowhere' is not a time zone" in refused.output
    assert "Traceback" not in refused.output

    created = run(
        "intake",
        "create",
        "--code",
        "west",
        "--name",
        "W",
        "--capacity",
        "5",
        "--time-zone",
        "America/Vancouver",
    )
    assert created.exit_code == 0, created.output
    assert (
        run("intake", "create", "--code", "east", "--name", "E", "--capacity", "5").exit_code == 0
    )
    listed = {line.split()[0]: line for line in run("intake", "list").output.splitlines()}
    assert "America/Vancouver" in listed["west"]
    assert "America/Toronto" in listed["east"]


def opening(env, code):
    registry = registry_for(env)
    try:
        return registry.get_intake(code).opens_at
    finally:
        registry.close()


@pytest.mark.parametrize(
    ("given", "utc"),
    [
        ("2099-01-15T09:00", "2099-01-15T17:00:00+00:00"),  # 09:00 PST
        ("2099-07-15T09:00", "2099-07-15T16:00:00+00:00"),  # 09:00 PDT
        ("2099-07-15T09:00+00:00", "2099-07-15T09:00:00+00:00"),  # an offset is taken as given
    ],
)
def test_opens_at_without_an_offset_is_read_in_the_intakes_zone(run, sqlite_env, given, utc):
    created = run(
        "intake",
        "create",
        *("--code", "west", "--name", "W", "--capacity", "5"),
        *("--time-zone", "America/Vancouver", "--opens-at", given),
    )
    assert created.exit_code == 0, created.output
    assert opening(sqlite_env, "west").isoformat() == utc


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("2099-03-08T02:30", "does not exist in America/Vancouver"),
        ("2099-11-01T01:30", "happens twice in America/Vancouver"),
    ],
)
def test_a_local_time_a_dst_change_skips_or_repeats_is_refused(run, given, said):
    refused = run(
        "intake",
        "create",
        *("--code", "west", "--name", "W", "--capacity", "5"),
        *("--time-zone", "America/Vancouver", "--opens-at", given),
    )
    assert refused.exit_code == 2
    assert "--opens-at" in refused.output
    assert said in refused.output
    assert "no intakes defined" in run("intake", "list").output


def test_unknown_intake_is_a_one_line_error(run):
    refused = run("intake", "open", "nope")
    assert refused.exit_code == 1
    assert refused.output.strip() == "Error: no intake has the code nope"


def test_audit_draw_recomputes_a_lottery_from_the_log(run, sqlite_env):
    run(
        "intake",
        "create",
        "--code",
        "draw",
        "--name",
        "Draw",
        "--capacity",
        "3",
        "--policy",
        "lottery",
    )
    opened = run("intake", "open", "draw", "--beacon", "none")
    assert "commitment to the draw secret (sha256): " in opened.output
    assert "warning: no beacon" in opened.output
    registry = registry_for(sqlite_env)
    try:
        for n in range(12):
            submit_person(registry, "draw", n)
    finally:
        registry.close()
    early = run("intake", "draw", "draw", "--operator-value", "ab" * 32)
    assert early.exit_code != 0
    assert "the draw comes after the close" in early.output
    run("intake", "close", "draw")
    bad = run("intake", "draw", "draw", "--operator-value", "xyz")
    assert bad.exit_code != 0
    assert "64 hex digits" in bad.output
    assert "Traceback" not in bad.output
    drawn = run("intake", "draw", "draw", "--operator-value", "ab" * 32)
    assert drawn.exit_code == 0, drawn.output
    Worker(sqlite_env, sqlite_env["CAREPATH_SECRET"].encode()).settle()

    audited = run("audit", "draw", "draw")

    assert audited.exit_code == 0, audited.output
    assert "ok   the revealed secret matches the commitment made at opening" in audited.output
    assert "ok   the ledger fixed the entries at the close" in audited.output
    assert "WARN this draw used a value the operator supplied" in audited.output
    assert "ok   a fresh allocator replaying the log records the same ledger" in audited.output
    assert "ok   the fairness figures match a recomputation from the log" in audited.output
    assert "3 selected of 12" in audited.output
    assert "with 9 degrees of freedom: p = " in audited.output
    assert "rank-sum of positions, 3 selected against 9 others" in audited.output
    assert "A low p-value alone is no proof of bias" in audited.output
    assert audited.output.strip().endswith("draw of draw: 12 entries; the ledger matches the log")


def test_audit_of_an_undrawn_intake_fails(run):
    run(
        "intake",
        "create",
        "--code",
        "nodraw",
        "--name",
        "N",
        "--capacity",
        "3",
        "--policy",
        "lottery",
    )
    run("intake", "open", "nodraw")
    audited = run("audit", "draw", "nodraw")
    assert audited.exit_code == 1
    assert "FAIL the ledger records one draw" in audited.output


def test_an_intake_takes_its_checklist_from_a_toml_file_and_a_bad_file_is_named(
    run, sqlite_env, tmp_path
):
    good = tmp_path / "stage-two.toml"
    good.write_text(
        'sections = ["language_test"]\ncase_document_mb = 20\n\n[[item]]\nkey = "identity"\n'
        'name_en = "Passport"\nname_fr = "Passeport"\ntypes = ["pdf"]\nmax_mb = 2\n'
        "max_files = 1\n",
        encoding="utf-8",
    )
    bad = tmp_path / "bad.toml"
    bad.write_text('[[item]]\nkey = "identity"\nname_en = "Passport"\n', encoding="utf-8")

    created = run(
        "intake", "create", "--code", "own", "--name", "Own", "--capacity", "3",
        "--checklist", str(good),
    )  # fmt: skip
    refused = run(
        "intake", "create", "--code", "bad", "--name", "Bad", "--capacity", "3",
        "--checklist", str(bad),
    )  # fmt: skip

    assert created.exit_code == 0, created.output
    registry = registry_for(sqlite_env)
    try:
        intake = registry.get_intake("own")
        assert [i.key for i in intake.checklist] == ["identity"]
        assert intake.checklist[0].max_bytes == 2 * 1024 * 1024
        assert intake.checklist[0].types == ("pdf",)
        assert intake.sections == ("language_test",)
        assert intake.case_document_bytes == 20 * 1024 * 1024
        assert "bad" not in [i.code for i in registry.list_intakes()]
    finally:
        registry.close()
    assert refused.exit_code == 2
    assert "--checklist" in refused.output
    assert "item 1: missing name_fr" in refused.output


def test_a_beacon_draw_audits_clean_and_fails_once_the_beacon_value_is_replaced(
    run, sqlite_env, monkeypatch, tmp_path
):
    import hashlib
    import json
    import sqlite3
    from datetime import timedelta

    import eventsourcing.domain

    from domain.beacon import QUICKNET_SAMPLE
    from domain.registry import Registry
    from tests.unit.test_draw import CLOSES, Clock

    clock = Clock(CLOSES - timedelta(hours=1))  # the sample round's day, in 2023
    monkeypatch.setattr(eventsourcing.domain, "datetime_now_with_tzinfo", clock)
    created = run(
        "intake", "create", "--code", "bcn", "--name", "Beacon", "--capacity", "3",
        "--policy", "lottery", "--closes-at", CLOSES.isoformat(),
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    opened = run("intake", "open", "bcn", "--beacon", "drand-quicknet")
    assert f"round {QUICKNET_SAMPLE.round}, published at 2023-09-15" in opened.output
    registry = Registry(
        env=application_env(sqlite_env, "Registry", create_table=False),
        secret=sqlite_env["CAREPATH_SECRET"].encode(),
        clock=clock,
    )
    try:
        for n in range(8):
            submit_person(registry, "bcn", n)
    finally:
        registry.close()
    clock.now = CLOSES
    assert run("intake", "close", "bcn").exit_code == 0
    round_file = tmp_path / "round.json"
    round_file.write_text(json.dumps(QUICKNET_SAMPLE.as_dict()))
    drawn = run("intake", "draw", "bcn", "--round-file", str(round_file))
    assert drawn.exit_code == 0, drawn.output
    Worker(sqlite_env, sqlite_env["CAREPATH_SECRET"].encode()).settle()

    audited = run("audit", "draw", "bcn")
    assert audited.exit_code == 0, audited.output
    assert "ok   the beacon's signature of the round verifies" in audited.output
    assert "ok   the beacon round was published after the close" in audited.output
    assert "with 7 degrees of freedom: p = " in audited.output

    # Someone with the database puts another value in place of the beacon's: a valid curve
    # point (the signature negated), with its randomness made consistent with it.
    other = "9" + QUICKNET_SAMPLE.signature[1:]
    database = sqlite3.connect(f"{sqlite_env['CAREPATH_DATA_DIR']}/registry.sqlite")
    with database:
        (state,) = database.execute(
            "SELECT state FROM stored_events WHERE topic LIKE '%Intake.DrawInputsRecorded'"
        ).fetchone()
        changed = (
            state.decode()
            .replace(QUICKNET_SAMPLE.signature, other)
            .replace(QUICKNET_SAMPLE.randomness, hashlib.sha256(bytes.fromhex(other)).hexdigest())
        )
        assert changed != state.decode()
        database.execute(
            "UPDATE stored_events SET state = ? WHERE topic LIKE '%Intake.DrawInputsRecorded'",
            (changed.encode(),),
        )
    database.close()

    tampered = run("audit", "draw", "bcn")
    assert tampered.exit_code == 1
    assert "FAIL the beacon's signature of the round verifies" in tampered.output
    assert "FAIL the ledger drew with the seed the log gives" in tampered.output
    assert "the ledger DOES NOT MATCH the log" in tampered.output
