"""An outside auditor's program, written from the README alone (stdlib only), recomputes every
decision and the fairness figures of a lottery with two pools and late withdrawals from the
stored rows, and finds a changed Ledger row (issue 12, must-hold 3)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_app, send_application, submit_person
from tests.stage_two_helpers import settle

SCRIPT = Path(__file__).parents[1] / "independent" / "recompute.py"
CODE = "indep"


def withdraw(registry: Any, case_id: Any, key: str) -> None:
    version = registry.get_case(case_id).version
    registry.withdraw(case_id, expected_version=version, reason="moved", idempotency_key=key)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: Any) -> Path:
    """A lottery of 40 places (braille 4, alternate_format 6 reserved; 30 general) and a
    waitlist of 12 per pool: 210 entries, braille with only 3 entrants (so a place moves to the
    general pool at the draw); withdrawals before the close, between the close and the draw
    (entered, then not drawn), and after the draw (holders and waiting people); then some
    holders send their application (the offer is taken up) and the scheduler's time passes
    every other deadline (expired offers, refilled from the waitlists)."""
    root = tmp_path_factory.mktemp("independent")
    env = {"CAREPATH_DATA_DIR": str(root / "data"), "CAREPATH_SECRET": "i" * 40}
    app = make_app(env)
    registry = app.extensions["carepath.registry"]
    try:
        registry.define_intake(
            code=CODE, name="Independent", stream="outside", capacity=40, policy="lottery",
            pools={"braille": 4, "alternate_format": 6}, waitlist_length=12, actor="t",
        )  # fmt: skip
        registry.open_intake(CODE, actor="t")
        cases = []
        for n in range(214):
            pool = "braille" if n % 70 == 5 else "alternate_format" if n % 5 == 1 else "general"
            cases.append(submit_person(registry, CODE, n, pool=pool))
        for n in (3, 8, 11, 140):  # before the close: never entered
            withdraw(registry, cases[n], f"w-before-{n}")
        registry.close_intake(CODE, actor="t")
        settle(env)
        for n in (20, 21, 22, 96, 150, 213):  # after the close, before the draw
            withdraw(registry, cases[n], f"w-late-{n}")
        registry.draw(CODE, actor="t", operator_value="0123abcd" * 8)
        settle(env)
        allocations = app.extensions["carepath.allocations"]
        granted = [c for c in cases if (a := allocations.of_case(c)) and a.state == "granted"]
        waiting = [c for c in cases if (a := allocations.of_case(c)) and a.state == "waitlisted"]
        for i, case_id in enumerate([*granted[:5], *waiting[:3]]):  # after the draw: refills
            withdraw(registry, case_id, f"w-after-{i}")
        settle(env)
        for case_id in granted[5:9]:  # taken up before the deadline
            send_application(registry, case_id)
        settle(env)
        registry.check_deadlines(CODE, datetime.now(UTC) + timedelta(days=40), actor="t")
        settle(env)
    finally:
        registry.close()
    return root / "data"


def recompute(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", str(SCRIPT), str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def decision_rows(data_dir: Path) -> int:
    names = ("PlaceGranted", "Invited", "Waitlisted", "NotSelected", "LeftWaitlist",
             "PlaceReleased", "PlacesMoved", "OfferTakenUp")  # fmt: skip
    with sqlite3.connect(data_dir / "allocator.sqlite") as connection:
        return sum(
            connection.execute(
                "SELECT count(*) FROM stored_events WHERE topic = ?", (f"domain.ledger:Ledger.{n}",)
            ).fetchone()[0]
            for n in names
        )


def test_the_script_from_the_readme_matches_every_decision_and_the_fairness_figures(data_dir):
    done = recompute(data_dir, CODE)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    checks = [line for line in lines if line.startswith(("ok ", "FAIL"))]
    assert len(checks) >= 15
    assert all(line.startswith("ok ") for line in checks), done.stdout
    recorded = decision_rows(data_dir)
    assert recorded > 250  # the run made grants, waitlists, refusals, releases and moves
    assert f"{recorded} decisions recomputed, {recorded} recorded" in done.stdout
    summary = next(line for line in lines if line.startswith("decisions: "))
    for kind in ("PlaceGranted", "Waitlisted", "NotSelected", "LeftWaitlist", "PlaceReleased",
                 "PlacesMoved", "OfferTakenUp"):  # fmt: skip
        assert kind in summary, summary
    assert "the rank-sum figures match" in done.stdout
    assert (
        "ok   the Ledger received and withdrew the entries the log gives, in order" in done.stdout
    )


def tampered(data_dir: Path, tmp_path: Path, topic: str, change: Any, offset: int = 3) -> Path:
    """A copy of the data dir with one Ledger row's state changed by `change(state) -> state`."""
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("registry.sqlite", "allocator.sqlite"):
        (copy / name).write_bytes((data_dir / name).read_bytes())
    with sqlite3.connect(copy / "allocator.sqlite") as connection:
        rowid, state = connection.execute(
            "SELECT rowid, state FROM stored_events WHERE topic = ? ORDER BY rowid LIMIT 1 OFFSET ?",
            (f"domain.ledger:Ledger.{topic}", offset),
        ).fetchone()
        changed = json.dumps(change(json.loads(state))).encode()
        connection.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (changed, rowid))
    return copy


def test_a_changed_slot_in_the_ledger_is_found(data_dir, tmp_path):
    def other_slot(state: dict[str, Any]) -> dict[str, Any]:
        return {**state, "slot": state["slot"] + 1}

    done = recompute(tampered(data_dir, tmp_path, "PlaceGranted", other_slot), CODE)
    assert done.returncode == 1, done.stdout
    assert "FAIL every decision of the Ledger, in order, follows from the log" in done.stdout
    assert "first difference at decision" in done.stdout


def test_a_changed_fairness_figure_is_found(data_dir, tmp_path):
    def kinder(state: dict[str, Any]) -> dict[str, Any]:
        return {**state, "fairness": {**state["fairness"], "p_value": 0.5}}

    copy = tampered(data_dir, tmp_path, "DrawMade", kinder, offset=0)
    done = recompute(copy, CODE)
    assert done.returncode == 1
    assert "FAIL the fairness p_value matches" in done.stdout


def test_a_changed_withdrawal_of_an_entry_is_found(data_dir, tmp_path):
    def someone_else(state: dict[str, Any]) -> dict[str, Any]:
        return {**state, "case_id": {"_type_": "uuid_hex", "_data_": "0" * 32}}

    done = recompute(tampered(data_dir, tmp_path, "EntryWithdrawn", someone_else), CODE)
    assert done.returncode == 1, done.stdout
    assert "FAIL the Ledger received and withdrew the entries the log gives" in done.stdout


def test_a_first_come_intake_moves_unused_places_only_from_its_close(tmp_path):
    """The README's "from then on": a reserved holder withdrawing before the close frees a slot
    that stays in its pool; the close moves every unused reserved place to general."""
    env = {"CAREPATH_DATA_DIR": str(tmp_path / "data"), "CAREPATH_SECRET": "f" * 40}
    app = make_app(env)
    registry = app.extensions["carepath.registry"]
    try:
        registry.define_intake(
            code="fc", name="First come", stream="outside", capacity=8, policy="first_come",
            pools={"braille": 2, "zeta": 2}, waitlist_length=3, actor="t",
        )  # fmt: skip
        registry.open_intake("fc", actor="t")
        pools = ["zeta", *["general"] * 7]
        cases = [submit_person(registry, "fc", n, pool=pool) for n, pool in enumerate(pools)]
        settle(env)
        withdraw(registry, cases[5], "w-waiting")  # leaves the waitlist
        cases.append(submit_person(registry, "fc", 8))  # waitlisted with the next rank
        withdraw(registry, cases[0], "w-zeta")  # a reserved slot free before the close
        settle(env)
        registry.close_intake("fc", actor="t")
        settle(env)
        withdraw(registry, cases[1], "w-general")
        settle(env)
    finally:
        registry.close()
    done = recompute(tmp_path / "data", "fc")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "25 decisions recomputed, 25 recorded" in done.stdout
    assert "PlacesMoved 2" in done.stdout


def test_bad_arguments_get_a_message_not_a_traceback(data_dir, tmp_path):
    unknown = recompute(data_dir, "nope")
    assert unknown.returncode == 2
    assert "no intake 'nope'" in unknown.stderr
    assert "indep" in unknown.stderr  # it names the intakes there are
    missing = recompute(tmp_path / "nothing", CODE)
    assert missing.returncode == 2
    assert "registry.sqlite: no such file" in missing.stderr
    assert "Traceback" not in unknown.stderr + missing.stderr
