"""Where a web process spends its CPU on the applicant journey: the API journey in one process.

    python bench/profile_journey.py                 # 500 journeys, CPU ms per request, top functions
    python bench/profile_journey.py --journeys 2000 --top 40 --sort tottime

A fresh PostgreSQL database (dropped at the end), the Flask app built by create_app() with
Redis sessions as in the surge benchmark, and the journey (register, contact, eligibility,
submit, case) through Flask's test client in one thread, under cProfile after a warm-up. It
prints the process CPU per request without the profiler, then the profile. The figures leave out
gunicorn, the network and PostgreSQL's own CPU; they say where the web tier's share goes.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import harness
from harness import CONTACT, ELIGIBILITY, INTAKE, about_you


def journey(client: Any, prefix: str, n: int) -> None:
    def check(response: Any, status: int) -> Any:
        if response.status_code != status:
            raise SystemExit(f"{response.request.path}: {response.status_code} {response.data!r}")
        return response.get_json()

    def key() -> dict[str, str]:
        return {"Idempotency-Key": uuid.uuid4().hex}

    data = check(
        client.post(
            f"/api/v1/intakes/{INTAKE}/registrations", json=about_you(prefix, n), headers=key()
        ),
        201,
    )
    version = data["version"]
    for step, answers in (("contact", CONTACT), ("eligibility", ELIGIBILITY)):
        data = check(
            client.put(
                f"/api/v1/case/steps/{step}",
                json={"version": version, "answers": answers},
                headers=key(),
            ),
            200,
        )
        version = data["version"]
    check(client.post("/api/v1/case/submission", json={"version": version}, headers=key()), 200)
    check(client.get("/api/v1/case"), 200)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--journeys", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="cumulative", choices=("cumulative", "tottime"))
    args = parser.parse_args()

    dbname = harness.create_database()
    data_dir = Path(tempfile.mkdtemp(prefix="carepath-profile-"))
    env = harness.carepath_env(
        dbname,
        data_dir,
        CAREPATH_REDIS_URL="redis://127.0.0.1:6379/14",
        CAREPATH_MAX_IN_FLIGHT="64",
    )
    try:
        harness.run_carepath(env, "db", "init")
        harness.run_carepath(
            env, "intake", "create", "--code", INTAKE, "--name", "Profile", "--capacity", "470"
        )
        harness.run_carepath(env, "intake", "open", INTAKE)
        os.environ.update(env)
        from web import create_app

        app = create_app()
        prefix = uuid.uuid4().hex[:6].upper()
        for n in range(args.warmup):
            journey(app.test_client(), prefix, n)
        started, cpu = time.perf_counter(), time.process_time()
        for n in range(args.warmup, args.warmup + args.journeys):
            journey(app.test_client(), prefix, n)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        requests = 5 * args.journeys
        profiler = cProfile.Profile()
        profiler.enable()
        for n in range(args.warmup + args.journeys, args.warmup + 2 * args.journeys):
            journey(app.test_client(), prefix, n)
        profiler.disable()
        pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)
        app.extensions["carepath.registry"].close()
        print(
            f"{requests} requests: {1000 * cpu / requests:.2f} ms CPU and "
            f"{1000 * wall / requests:.2f} ms wall per request in this process (no profiler)"
        )
    finally:
        harness.drop_database(dbname)


if __name__ == "__main__":
    main()
