"""Rebuild benchmark: about a million events on PostgreSQL, then `carepath projections rebuild`.

Creates a fresh database (carepath_bench_<random>, dropped at the end), seeds submitted cases in
big batches (the events the web journey records, built in memory as tests/integration/seed.py
does) with officers' actions on part of them (assign, accept, approve or refuse, return as
incomplete, request and answer information) and some withdrawals, lets the allocator decide on
everything, then times `carepath projections rebuild` of every read model, as an operator runs it.

    python bench/rebuild.py                     # 140,000 cases: about 1.1 million events
    python bench/rebuild.py --cases 20000       # a quicker look

Prints progress on stderr and, at the end, the command, its summary lines and the throughput.
Writes bench/results/rebuild-latest.json. No timing is asserted: this measures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from harness import PG, create_database, drop_database, log  # noqa: E402

from domain.allocator import Allocator  # noqa: E402
from domain.case import Case  # noqa: E402
from domain.registry import Registry  # noqa: E402
from projections.persistence import application_env  # noqa: E402
from projections.runner import catch_up  # noqa: E402
from projections.views import migrate  # noqa: E402
from tests.integration.seed import submitted_case  # noqa: E402

SECRET = "b" * 40
CODE = "bench-rebuild"
OFFICER = uuid.UUID(int=1)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=140_000, help="submitted cases to seed")
    parser.add_argument("--capacity", type=int, default=28_000)
    parser.add_argument("--batch", type=int, default=1_000, help="cases per transaction")
    parser.add_argument("--keep", action="store_true", help="keep the database (prints its name)")
    parser.add_argument(
        "--seed-only", action="store_true", help="stop before the rebuild (with --keep: to profile)"
    )
    return parser.parse_args(argv)


def officers_work(case: Case, n: int, capacity: int) -> None:
    """What officers (and the applicant) do to case n: those holding a place are decided or
    returned; the first of those waiting are asked for information and answer; a few withdraw."""
    key = f"bench-{n}"
    if n < capacity:
        case.assign(OFFICER, OFFICER, f"{key}-assign")
        case.submit_application((), (), "en", f"{key}-send", "applicant")  # stage two, sent
        if n % 10 == 9:
            case.return_incomplete(["documents_missing"], "", OFFICER, f"{key}-return")
            return
        case.accept_for_processing(OFFICER, f"{key}-accept", holds_place=True)
        if n % 2:
            case.refuse(["inadmissible"], "", OFFICER, f"{key}-refuse")
        else:
            case.approve("in order", OFFICER, f"{key}-approve")
    elif n < 2 * capacity:
        case.request_information("Send the employer's letter", OFFICER, f"{key}-request")
        case.provide_information("r1", "sent", f"{key}-answer", "applicant")
    elif n % 25 == 0:
        case.withdraw("other plans", f"{key}-withdraw", "applicant")


def seed(registry: Registry, args: argparse.Namespace) -> int:
    intake_id = registry.get_intake(CODE).id
    started = time.monotonic()
    for first in range(0, args.cases, args.batch):
        aggregates: list[Any] = []
        for n in range(first, min(first + args.batch, args.cases)):
            case, pointer = submitted_case(SECRET.encode(), intake_id, n, "general")
            assert isinstance(case, Case)
            officers_work(case, n, args.capacity)
            aggregates.extend([case, pointer])
        registry.save(*aggregates)
        done = min(first + args.batch, args.cases)
        if done % (20 * args.batch) == 0 or done == args.cases:
            head = registry.recorder.max_notification_id() or 0
            log(
                f"seeded {done:,} cases, {head:,} events ({head / (time.monotonic() - started):,.0f}/s)"
            )
    return registry.recorder.max_notification_id() or 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    name = create_database()
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": name,
        "POSTGRES_HOST": PG["host"],
        "POSTGRES_PORT": PG["port"],
        "POSTGRES_USER": PG["user"],
        "POSTGRES_PASSWORD": "",
        "CAREPATH_SECRET": SECRET,
    }
    log(f"database {name}")
    try:
        registry_env = application_env(env, Registry.name, create_table=True)
        registry_env["GROUP_COMMIT"] = "n"
        registry = Registry(env=registry_env, secret=SECRET.encode())
        allocator = Allocator(env=application_env(env, Allocator.name, create_table=True))
        migrate(env)
        registry.define_intake(
            code=CODE,
            name="Rebuild benchmark",
            stream="",
            capacity=args.capacity,
            policy="first_come",
            actor="operator:bench",
        )
        registry.open_intake(CODE, actor="operator:bench")
        registry_events = seed(registry, args)
        log("the allocator decides on everything ...")
        started = time.monotonic()
        catch_up(registry, allocator, batch=5_000)
        ledger_events = allocator.recorder.max_notification_id() or 0
        log(f"allocator: {ledger_events:,} ledger events in {time.monotonic() - started:.0f} s")
        registry.close()
        allocator.close()
        if args.seed_only:
            return 0

        command = [str(Path(sys.executable).with_name("carepath")), "projections", "rebuild"]
        child_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CAREPATH_", "PERSISTENCE_MODULE", "REGISTRY_", "POSTGRES_"))
        }
        child_env.update(env)
        log(f"$ {' '.join(['carepath', *command[1:]])}   (POSTGRES_DBNAME={name})")
        started = time.monotonic()
        done = subprocess.run(
            command, env=child_env, stdout=subprocess.PIPE, text=True, check=True, timeout=3600
        )
        seconds = time.monotonic() - started
        summaries = [line for line in done.stdout.splitlines() if line.startswith("rebuilt ")]
        rebuilt = sum(int(line.split(": ")[1].split(" events")[0]) for line in summaries)
        result = {
            "command": "carepath projections rebuild",
            "database_events": {"Registry": registry_events, "Allocator": ledger_events},
            "cases": args.cases,
            "capacity": args.capacity,
            "summaries": summaries,
            "events_rebuilt": rebuilt,
            "seconds": round(seconds, 1),
            "events_per_second": round(rebuilt / seconds),
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        print(f"$ carepath projections rebuild   (PostgreSQL {name})")
        for line in summaries:
            print(line)
        print(
            f"{registry_events + ledger_events:,} events in the logs; {rebuilt:,} followed events "
            f"rebuilt in {seconds:.1f} s (whole command): {rebuilt / seconds:,.0f} events/s"
        )
        out = ROOT / "bench" / "results" / "rebuild-latest.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        log(f"wrote {out.relative_to(ROOT)}")
    finally:
        if args.keep:
            log(f"kept database {name}")
        else:
            drop_database(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
