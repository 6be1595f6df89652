"""Failure drills under a steady load of the applicant journey, on real processes:

  1. SIGKILL a random gunicorn worker (never the master) --kills times at random moments;
  2. stop PostgreSQL immediately (`pg_ctlcluster ... stop -m immediate`), then start it again,
     --restarts times.

After each, measures how long until the service answers again (a read that touches the database,
GET /api/v1/intakes/surge, and a write of the steady load acknowledged); each must be under 30 s.
For PostgreSQL this is counted from the moment `start` returns (requests made while it was down
wait or get 503 + Retry-After); `outage_s_max_from_stop` adds the time it was down.
Clients that got no answer retry with the same idempotency key; at the end every acknowledged
write must be in the log with the acknowledged version, nothing recorded twice, and re-sending the
writes of clients that lost an answer (and a sample of others) must give the same receipt.

    python bench/drills.py                      # 100 kills, 20 restarts (about 8 minutes)
    python bench/drills.py --kills 10 --restarts 2

Writes bench/results/drills-latest.json. Bounded by --max-minutes (default 15); always restarts
PostgreSQL if a drill left it stopped, stops every process and drops the database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
from harness import (
    INTAKE,
    Applicant,
    Client,
    Proc,
    Progress,
    Sampler,
    Stats,
    Web,
    Workspace,
    log,
)

OUTPUT = harness.RESULTS / "drills-latest.json"
PG_CTL = ["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main"]
LIMIT_S = 30.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--restarts", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=32, help="applicants in flight")
    parser.add_argument("--capacity", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--sessions", choices=("redis", "file"), default="redis")
    parser.add_argument("--redis-db", type=int, default=14)
    parser.add_argument("--max-minutes", type=float, default=15.0)
    parser.add_argument("--receipt-sample", type=int, default=300)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    return parser.parse_args(argv)


class SteadyLoad(threading.Thread):
    """Journeys of new applicants, `concurrency` at a time, until stopped (own event loop)."""

    def __init__(self, base: str, concurrency: int, sampler: Sampler) -> None:
        super().__init__(name="steady-load", daemon=True)
        self.base = base
        self.concurrency = concurrency
        self.sampler = sampler
        self.stats = Stats("steady load")
        self.people: list[Applicant] = []
        self.stop_event = threading.Event()
        self.error: BaseException | None = None

    def _applicants(self) -> Iterator[Applicant]:
        n = 0
        while not self.stop_event.is_set():
            applicant = Applicant("D", n)
            self.people.append(applicant)
            n += 1
            yield applicant

    def run(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            self.error = error

    async def _run(self) -> None:
        stats = self.stats
        stats.started = time.monotonic()
        source = self._applicants()
        progress = Progress(self.sampler)
        async with Client(self.base, self.concurrency, give_up_after=240) as client:

            async def lane() -> None:
                for applicant in source:
                    await client.journey(stats, applicant)

            async def report() -> None:
                while not self.stop_event.is_set():
                    await asyncio.sleep(10)
                    done = stats.journeys_done + stats.journeys_failed
                    progress(stats, done, len(self.people))

            reporter = asyncio.create_task(report())
            await asyncio.gather(*(lane() for _ in range(self.concurrency)))
            reporter.cancel()
        stats.ended = time.monotonic()

    def stop(self, timeout: float = 300) -> None:
        self.stop_event.set()
        self.join(timeout)


def probe_read(base: str, timeout: float = 60.0) -> float | None:
    """Seconds until GET /api/v1/intakes/surge (reads the Registry) answers 200; None: never."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            with urllib.request.urlopen(f"{base}/api/v1/intakes/{INTAKE}", timeout=2) as answer:  # noqa: S310
                if answer.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.05)
    return None


def wait_write(stats: Stats, since: float, timeout: float = 60.0) -> float | None:
    """Seconds after `since` at which the steady load had a write answered again."""
    while time.monotonic() - since < timeout:
        if stats.last_write_ok > since:
            return stats.last_write_ok - since
        time.sleep(0.02)
    return None


def pg_ctl(action: str, *extra: str) -> None:
    subprocess.run([*PG_CTL, action, *extra], check=True, capture_output=True, timeout=120)


def pg_is_up() -> bool:
    try:
        with harness.pg_admin() as conn:
            conn.execute("SELECT 1")
    except Exception:  # noqa: BLE001 - down, starting or refusing: not up
        return False
    return True


def kill_drill(
    web: Web, load: SteadyLoad, count: int, deadline: float, rng: random.Random
) -> dict[str, Any]:
    """SIGKILL a random worker `count` times; the time until a read and a write answer again."""
    reads: list[float] = []
    writes: list[float] = []
    respawns: list[float] = []
    failures: list[str] = []
    done = 0
    expected = (web.config() or (len(web.workers()), 1))[0]
    for i in range(count):
        if time.monotonic() > deadline:
            failures.append(f"stopped after {done} kills: --max-minutes reached")
            break
        time.sleep(rng.uniform(0.2, 1.5))
        workers = web.workers()
        if not workers:
            failures.append(f"kill {i + 1}: the master has no workers")
            continue
        victim = rng.choice(workers)
        assert victim.pid != web.pid
        killed_at = time.monotonic()
        try:
            os.kill(victim.pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        done += 1
        read = probe_read(web.base)
        write = wait_write(load.stats, killed_at)
        while len(web.workers()) < expected and time.monotonic() - killed_at < LIMIT_S:
            time.sleep(0.02)
        respawn = time.monotonic() - killed_at
        if read is None or write is None or max(read, write) >= LIMIT_S:
            failures.append(f"kill {i + 1} (pid {victim.pid}): read {read}, write {write}")
        reads.append(read if read is not None else float("inf"))
        writes.append(write if write is not None else float("inf"))
        respawns.append(respawn)
        if done % 10 == 0:
            log(
                f"kills: {done}/{count}; worst recovery so far: read {max(reads):.2f} s, "
                f"write {max(writes):.2f} s, respawn {max(respawns):.2f} s"
            )
    return {
        "requested": count,
        "done": done,
        "read_recovery_s_max": _max(reads),
        "read_recovery_s_median": harness.median(reads),
        "write_recovery_s_max": _max(writes),
        "write_recovery_s_median": harness.median(writes),
        "respawn_s_max": _max(respawns),
        "all_under_30s": not failures
        and all(max(r, w) < LIMIT_S for r, w in zip(reads, writes, strict=False)),
        "failures": failures,
    }


def restart_drill(
    web: Web, load: SteadyLoad, count: int, deadline: float, rng: random.Random, state: dict
) -> dict[str, Any]:
    """Stop PostgreSQL immediately, start it again; until a read and a write answer again."""
    reads: list[float] = []
    writes: list[float] = []
    from_stop: list[float] = []
    failures: list[str] = []
    done = 0
    for i in range(count):
        if time.monotonic() > deadline:
            failures.append(f"stopped after {done} restarts: --max-minutes reached")
            break
        time.sleep(rng.uniform(2.0, 5.0))
        stopped_at = time.monotonic()
        state["pg_down"] = True
        pg_ctl("stop", "-m", "immediate")
        time.sleep(rng.uniform(0.5, 3.0))
        pg_ctl("start")
        state["pg_down"] = False
        started_at = time.monotonic()
        done += 1
        read = probe_read(web.base)
        write = wait_write(load.stats, started_at)
        if read is None or write is None or max(read, write) >= LIMIT_S:
            failures.append(f"restart {i + 1}: read {read}, write {write} s after start")
        reads.append(read if read is not None else float("inf"))
        writes.append(write if write is not None else float("inf"))
        from_stop.append((started_at - stopped_at) + max(reads[-1], writes[-1]))
        log(
            f"restart {done}/{count}: down {started_at - stopped_at:.1f} s; answers again "
            f"{read if read is None else round(read, 2)} s (read), "
            f"{write if write is None else round(write, 2)} s (write) after the start"
        )
    return {
        "requested": count,
        "done": done,
        "read_recovery_s_max": _max(reads),
        "read_recovery_s_median": harness.median(reads),
        "write_recovery_s_max": _max(writes),
        "write_recovery_s_median": harness.median(writes),
        "outage_s_max_from_stop": _max(from_stop),
        "all_under_30s": not failures
        and all(max(r, w) < LIMIT_S for r, w in zip(reads, writes, strict=False)),
        "failures": failures,
    }


def _max(values: list[float]) -> float | None:
    return round(max(values), 3) if values else None


async def resend(base: str, people: list[Applicant]) -> dict[str, Any]:
    """Send each acknowledged write again with its key: the receipt must be the same."""
    checked = mismatches = 0
    examples: list[str] = []
    stats = Stats("receipts")
    async with Client(base, 16, give_up_after=60) as client:
        sem = asyncio.Semaphore(16)

        async def one(a: Applicant) -> None:
            nonlocal checked, mismatches
            async with sem:
                bodies = {
                    "contact": ("PUT", "/api/v1/case/steps/contact"),
                    "eligibility": ("PUT", "/api/v1/case/steps/eligibility"),
                    "submit": ("POST", "/api/v1/case/submission"),
                }
                previous = {"contact": 1, "eligibility": 2, "submit": 3}
                for write, (method, path) in bodies.items():
                    if write not in a.acked:
                        continue
                    body: dict[str, Any] = {"version": a.acked.get(_before(write), previous[write])}
                    if write == "contact":
                        body["answers"] = harness.CONTACT
                    elif write == "eligibility":
                        body["answers"] = harness.ELIGIBILITY
                    status, headers, data = await client.call(
                        stats, write, method, path, a, body, a.keys[write], write
                    )
                    checked += 1
                    ok = (
                        status == 200
                        and data.get("version") == a.acked[write]
                        and headers.get("Idempotent-Replayed") == "true"
                    )
                    if not ok:
                        mismatches += 1
                        examples.append(f"{a.prefix}{a.n} {write}: {status} {data}")
                if "register" in a.acked:
                    status, headers, data = await client.call(
                        stats,
                        "register",
                        "POST",
                        f"/api/v1/intakes/{INTAKE}/registrations",
                        a,
                        harness.about_you(a.prefix, a.n),
                        a.keys["register"],
                        "register",
                    )
                    checked += 1
                    ok = (
                        status == 201
                        and data.get("reference") == a.reference
                        and data.get("access_code") == a.access_code
                        and data.get("version") == a.acked["register"]
                        and headers.get("Idempotent-Replayed") == "true"
                    )
                    if not ok:
                        mismatches += 1
                        examples.append(f"{a.prefix}{a.n} register: {status} {data}")

        await asyncio.gather(*(one(a) for a in people))
    return {"checked": checked, "mismatches": mismatches, "examples": examples[:10]}


def _before(write: str) -> str:
    return {"contact": "register", "eligibility": "contact", "submit": "eligibility"}[write]


def run(args: argparse.Namespace, ws: Workspace, state: dict) -> dict[str, Any]:
    rng = random.Random(args.seed)
    started = time.monotonic()
    deadline = started + args.max_minutes * 60 - 120  # leave time for the checks
    extra: dict[str, str] = {}
    if args.sessions == "redis":
        extra["CAREPATH_REDIS_URL"] = f"redis://127.0.0.1:6379/{args.redis_db}"
        ws.cleanups.append(lambda: _flush(extra["CAREPATH_REDIS_URL"]))
    env = harness.carepath_env(ws.dbname, ws.tmp / "data", **extra)
    harness.run_carepath(env, "db", "init")
    harness.run_carepath(
        env,
        *("intake", "create", "--code", INTAKE, "--name", "Drills"),
        *("--capacity", str(args.capacity), "--waitlist-length", "0"),
    )
    harness.run_carepath(env, "intake", "open", INTAKE)
    worker = ws.add(Proc("worker", [harness.carepath_bin(), "worker"], env, ws.tmp)).start()
    web = Web(
        env,
        ws.tmp,
        port=harness.free_port(),
        workers=args.workers,
        threads=args.threads,
    )
    ws.add(web).start()
    workers, threads = web.wait_ready()
    time.sleep(1.0)
    sampler = Sampler(ws.dbname)
    sampler.web, sampler.worker = web, worker
    sampler.start()
    ws.closers.append(sampler.stop)
    log(f"web: {workers} workers x {threads} threads; steady load of {args.concurrency}")

    load = SteadyLoad(web.base, args.concurrency, sampler)
    load.start()
    ws.closers.append(lambda: load.stop(timeout=30))
    time.sleep(5)  # the load settles
    log(f"drill 1: SIGKILL a random web worker {args.kills} times")
    kills = kill_drill(web, load, args.kills, deadline, rng)
    log(f"drill 1 done: {kills['done']} kills, failures {len(kills['failures'])}")
    log(f"drill 2: stop PostgreSQL immediately and start it, {args.restarts} times")
    restarts = restart_drill(web, load, args.restarts, deadline, rng, state)
    log(f"drill 2 done: {restarts['done']} restarts, failures {len(restarts['failures'])}")
    time.sleep(3)
    log("stopping the load (journeys in flight finish)")
    load.stop()
    if load.is_alive():
        raise RuntimeError("the steady load did not stop in 300 s")
    if load.error is not None:
        raise load.error
    people = load.people
    unanswered = [a for a in people if a.unanswered and a.acked]
    others = [a for a in people if not a.unanswered and a.acked]
    sample = unanswered + rng.sample(others, min(args.receipt_sample, len(others)))
    log(
        f"re-sending the writes of {len(unanswered)} applicants who lost an answer and "
        f"{len(sample) - len(unanswered)} others with the same keys"
    )
    receipts = asyncio.run(resend(web.base, sample))
    log("waiting for the worker to catch up")
    caught_up = harness.wait_for_allocator(env)
    registry = harness.build_registry(env, POSTGRES_POOL_SIZE="10")
    try:
        intake_id = registry.get_intake(INTAKE).id
        checks = harness.check_writes(registry, people)
    finally:
        registry.close()
    quota = harness.quota_of(env, intake_id)
    submitted = checks["submitted_by_intake"].get(intake_id.hex, 0)
    granted = quota.granted if quota else 0
    sampler.stop()
    load_summary = load.stats.summary()
    return {
        "kills": kills,
        "restarts": restarts,
        "load": load_summary,
        "applicants": len(people),
        "applicants_with_lost_answers": len(unanswered),
        "abandoned": sum(1 for a in people if a.abandoned),
        "abandoned_examples": [a.abandoned for a in people if a.abandoned][:5],
        "receipts": receipts,
        "acknowledged_writes": checks["acknowledged_writes"],
        "lost": checks["lost"],
        "duplicates": checks["duplicates"],
        "granted": granted,
        "capacity": args.capacity,
        "submitted": submitted,
        "granted_ok": granted == min(args.capacity, submitted),
        "projection_lag_max_s": round(max((s["lag_s"] for s in sampler.samples), default=0), 2),
        "checks": checks | {"caught_up": caught_up},
        "config": {
            "workers": workers,
            "threads": threads,
            "concurrency": args.concurrency,
            "sessions": args.sessions,
            "seed": args.seed,
        },
        "duration_s": round(time.monotonic() - started, 1),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _flush(url: str) -> None:
    from redis import Redis

    client = Redis.from_url(url)
    try:
        keys = list(client.scan_iter("carepath:session:*", count=1000))
        for first in range(0, len(keys), 1000):
            client.delete(*keys[first : first + 1000])
    finally:
        client.close()


def print_table(r: dict[str, Any]) -> None:
    print()
    c = r["config"]
    print(
        f"carepath drills: web {c['workers']} workers x {c['threads']} threads, steady load of "
        f"{c['concurrency']} applicants, {r['duration_s']} s"
    )
    head = f"{'drill':<28}{'done':>6}{'read max s':>12}{'read med s':>12}{'write max s':>13}{'write med s':>13}{'<30s':>6}"
    print(head)
    print("-" * len(head))
    for name, d in (
        ("SIGKILL a web worker", r["kills"]),
        ("PostgreSQL stop -m immediate", r["restarts"]),
    ):
        print(
            f"{name:<28}{d['done']:>6}{d['read_recovery_s_max'] or 0:>12.2f}"
            f"{d['read_recovery_s_median'] or 0:>12.2f}{d['write_recovery_s_max'] or 0:>13.2f}"
            f"{d['write_recovery_s_median'] or 0:>13.2f}{'yes' if d['all_under_30s'] else 'NO':>6}"
        )
    load = r["load"]
    print(
        f"load: {load['requests']} requests, {load['journeys_done']} journeys done, "
        f"{r['abandoned']} abandoned, 503 {load['refused_503']}, 5xx {load['errors_5xx']}, "
        f"no answer {load['no_answer']}, replayed {load['replayed']}"
    )
    print(
        f"receipts re-sent: {r['receipts']['checked']}, different {r['receipts']['mismatches']}; "
        f"acknowledged writes {r['acknowledged_writes']}, lost {r['lost']}, duplicates "
        f"{r['duplicates']}; granted {r['granted']}/{r['capacity']} of {r['submitted']} "
        f"submitted -> {'ok' if r['granted_ok'] else 'WRONG'}"
    )
    for failure in r["kills"]["failures"][:5] + r["restarts"]["failures"][:5]:
        print(f"  failure: {failure}")
    for example in r["checks"]["lost_examples"][:5] + r["receipts"]["examples"][:5]:
        print(f"  {example}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    harness.install_sigterm()
    state = {"pg_down": False}
    ws = Workspace(keep_logs=args.keep_logs)
    failed = True
    result: dict[str, Any] | None = None
    try:
        result = run(args, ws, state)
        failed = False
    except KeyboardInterrupt:
        log("interrupted: restarting PostgreSQL if needed, stopping every process")
    finally:
        if state["pg_down"] or not pg_is_up():
            with contextlib.suppress(Exception):
                pg_ctl("start")
        ws.close(failed)
    if result is None:
        return 1
    harness.write_json(args.output, result)
    print_table(result)
    ok = (
        result["lost"] == 0
        and result["duplicates"] == 0
        and result["receipts"]["mismatches"] == 0
        and result["kills"]["all_under_30s"]
        and result["restarts"]["all_under_30s"]
        and result["granted_ok"]
        and result["load"]["errors_5xx"] == 0
    )
    print(
        f"{'DRILLS OK' if ok else 'DRILLS FAILED'}: {result['kills']['done']} worker kills "
        f"(worst {result['kills']['write_recovery_s_max']} s), {result['restarts']['done']} "
        f"PostgreSQL restarts (worst {result['restarts']['write_recovery_s_max']} s after start), "
        f"{result['acknowledged_writes']} acknowledged writes, lost {result['lost']}, duplicates "
        f"{result['duplicates']}, receipts different {result['receipts']['mismatches']}, 5xx "
        f"{result['load']['errors_5xx']} -> {args.output}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
