"""The opening surge, end to end, as in production: `carepath web` (gunicorn) and `carepath worker`
on a fresh PostgreSQL database, and N applicants each walking the whole JSON API journey over real
HTTP with their own cookie session.

    python bench/surge.py                                   # 45,000 applicants, 4,700 places
    python bench/surge.py --applicants 4500 --capacity 470  # make bench-quick

Phases, in one run on one database:
  1. warm-up: a few hundred requests (hello and whole journeys), not measured;
  2. the surge: --applicants journeys with group commit as configured by default (on);
  3. hello: GET /healthz (a route that touches no database) on the same server, --hello-seconds;
  4. baseline: the same journeys with CAREPATH_GROUP_COMMIT=n on a restarted server of the same
     configuration, --baseline-fraction of the applicants (it is a rate);
  5. service level: Registry.register from --service-threads threads in this process for
     --service-seconds each, group commit on, then off (web stopped);
  6. checks: the worker catches up; every acknowledged write is in the log with the version that
     was acknowledged and readable through sign-in; nothing recorded twice; places granted equal
     min(capacity, submitted).

Latencies are per HTTP exchange (a 503 answered and retried counts as one exchange); the
projection lag is sampled every 0.5 s, so 0.0 means under half a second. CPU is per process as a
percent of one core over the surge, with what the rest of the machine used beside it.

Prints a table and writes bench/results/surge-latest.json. The database is dropped and every
process stopped at the end, also on failure or Ctrl+C.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import itertools
import os
import sys
import threading
import time
import uuid
from collections import Counter
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

OUTPUT = harness.RESULTS / "surge-latest.json"
KEEPALIVE = [False]  # set from --keepalive


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--applicants", type=int, default=45_000)
    parser.add_argument("--capacity", type=int, default=4_700)
    parser.add_argument(
        "--concurrency", type=int, default=64, help="applicants in flight at once (default 64)"
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="gunicorn workers (default: the CLI's choice)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="threads per worker (default: the CLI's choice)"
    )
    parser.add_argument(
        "--sessions",
        choices=("redis", "file"),
        default="redis",
        help="session store: local Redis (default, measured faster) or files in the data dir",
    )
    parser.add_argument("--redis-db", type=int, default=13, help="Redis database number")
    parser.add_argument(
        "--keepalive",
        action="store_true",
        help="reuse pooled connections (default: one connection per request, like browsers)",
    )
    parser.add_argument("--baseline-fraction", type=float, default=0.2)
    parser.add_argument("--warmup", type=int, default=300, help="warm-up requests")
    parser.add_argument("--hello-seconds", type=float, default=10.0)
    parser.add_argument("--service-threads", type=int, default=64)
    parser.add_argument("--service-seconds", type=float, default=10.0)
    parser.add_argument("--readback-threads", type=int, default=8)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--skip-service", action="store_true")
    parser.add_argument("--keep-logs", action="store_true", help="keep the server logs")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    return parser.parse_args(argv)


def group_commit_in_code() -> bool:
    """Whether the Registry reads a GROUP_COMMIT setting yet (it is being implemented)."""
    from domain import registry

    return "GROUP_COMMIT" in inspect.getsource(registry)


def applicants(prefix: str, count: int, start: int = 0) -> list[Applicant]:
    return [Applicant(prefix, n) for n in range(start, start + count)]


async def load(
    web: Web,
    concurrency: int,
    stats: Stats,
    people: list[Applicant],
    sampler: Sampler | None,
    progress: bool = True,
) -> None:
    async with Client(web.base, concurrency, keepalive=KEEPALIVE[0]) as client:
        await harness.run_journeys(
            client, stats, people, progress=Progress(sampler) if progress else None
        )


async def warm_up(web: Web, concurrency: int, hello_path: str, requests: int, prefix: str) -> Stats:
    """Hello requests and whole journeys, about `requests` in all; returns what they saw."""
    stats = Stats(f"warm-up {prefix}")
    async with Client(web.base, concurrency, keepalive=KEEPALIVE[0]) as client:
        hellos = requests // 3
        await asyncio.gather(*(client.hello(stats, hello_path) for _ in range(hellos)))
        people = applicants(prefix, max(1, (requests - hellos) // 5))
        await harness.run_journeys(client, stats, people)
    stats.people = people  # type: ignore[attr-defined]
    return stats


async def hello(web: Web, concurrency: int, path: str, seconds: float) -> Stats:
    stats = Stats(f"hello {path}")
    async with Client(web.base, concurrency, keepalive=KEEPALIVE[0]) as client:
        await harness.run_hello(client, stats, path, seconds)
    return stats


def service_saves(
    environ: dict[str, str], group_commit: bool, threads: int, seconds: float, start: int
) -> dict[str, Any]:
    """Registry.register from `threads` threads for `seconds`: durable saves per second."""
    from domain.registry import Registry

    env = harness.registry_env(environ, group_commit)
    registry = Registry(env=env, secret=environ["CAREPATH_SECRET"].encode())
    counter = itertools.count(start)
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    done = [0]
    lock = threading.Lock()
    barrier = threading.Barrier(threads + 1)
    deadline = [0.0]

    def work() -> None:
        mine: list[float] = []
        barrier.wait()
        while time.monotonic() < deadline[0]:
            n = next(counter)
            sent = time.monotonic()
            try:
                registry.register(
                    "svc",
                    harness.about_you("V", n),
                    language="en",
                    idempotency_key=uuid.uuid4().hex,
                )
            except Exception as error:  # noqa: BLE001 - counted and reported
                with lock:
                    errors[f"{type(error).__name__}: {str(error)[:80]}"] += 1
                continue
            mine.append(time.monotonic() - sent)
        with lock:
            latencies.extend(mine)
            done[0] += len(mine)

    workers = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
    for thread in workers:
        thread.start()
    cpu_before = harness.self_cpu()
    started = time.monotonic()
    deadline[0] = started + seconds
    barrier.wait()
    for thread in workers:
        thread.join()
    elapsed = time.monotonic() - started
    cpu = harness.self_cpu() - cpu_before
    registry.close()
    ordered = sorted(latencies)
    return {
        "group_commit": group_commit,
        "threads": threads,
        "seconds": round(elapsed, 2),
        "saves": done[0],
        "saves_per_s": round(done[0] / elapsed, 1),
        "p50_ms": harness._pct(ordered, 50),
        "p99_ms": harness._pct(ordered, 99),
        "errors": dict(errors),
        "bench_process_cpu_pct": round(100 * cpu / elapsed, 1),
        "next_person": next(counter),
    }


def define_service_intake(environ: dict[str, str]) -> None:
    registry = harness.build_registry(environ)
    try:
        registry.define_intake(
            code="svc",
            name="Service-level bench",
            stream="",
            capacity=1,
            policy="first_come",
            actor="bench",
        )
        registry.open_intake("svc", actor="bench")
    finally:
        registry.close()


def start_web(
    ws: Workspace, env: dict[str, str], args: argparse.Namespace, tag: str
) -> tuple[Web, tuple[int, int]]:
    web = Web(
        env, ws.tmp, port=harness.free_port(), workers=args.workers, threads=args.threads, tag=tag
    )
    ws.add(web).start()
    workers, threads = web.wait_ready()
    time.sleep(1.0)  # the last workers finish importing
    return web, (workers, threads)


def flush_redis_sessions(url: str) -> None:
    from redis import Redis

    client = Redis.from_url(url)
    try:
        keys = list(client.scan_iter("carepath:session:*", count=1000))
        for first in range(0, len(keys), 1000):
            client.delete(*keys[first : first + 1000])
    finally:
        client.close()


def run(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:
    data_dir = ws.tmp / "data"
    KEEPALIVE[0] = args.keepalive
    extra: dict[str, str] = {}
    if args.sessions == "redis":
        extra["CAREPATH_REDIS_URL"] = f"redis://127.0.0.1:6379/{args.redis_db}"
        flush_redis_sessions(extra["CAREPATH_REDIS_URL"])
        ws.cleanups.append(lambda: flush_redis_sessions(extra["CAREPATH_REDIS_URL"]))
    env = harness.carepath_env(ws.dbname, data_dir, **extra)
    harness.run_carepath(env, "db", "init")
    harness.run_carepath(
        env,
        "intake",
        "create",
        "--code",
        INTAKE,
        "--name",
        "Surge",
        "--capacity",
        str(args.capacity),
        "--waitlist-length",
        "0",
    )
    harness.run_carepath(env, "intake", "open", INTAKE)
    pg = harness.pg_settings(ws.dbname)
    log(f"PostgreSQL: fsync={pg['fsync']} synchronous_commit={pg['synchronous_commit']}")
    gc_code = group_commit_in_code()
    if not gc_code:
        log("note: domain/registry.py does not read GROUP_COMMIT yet: on and off will be the same")

    worker = ws.add(Proc("worker", [harness.carepath_bin(), "worker"], env, ws.tmp)).start()
    sampler = Sampler(ws.dbname)
    sampler.worker = worker
    sampler.start()
    ws.closers.append(sampler.stop)

    everyone: list[Applicant] = []
    phases: dict[str, Any] = {}

    # 1-3: the surge on the default configuration (group commit on), then hello
    web, (workers, threads) = start_web(ws, env, args, "web-gc-on")
    sampler.web = web
    hello_path = harness.pick_hello_path(web.base)
    if hello_path != "/healthz":
        log(f"note: /healthz does not answer yet; hello uses {hello_path}")
    log(
        f"web: {workers} workers x {threads} threads on {web.base}; "
        f"sessions {args.sessions}; concurrency {args.concurrency}"
    )
    warm = asyncio.run(warm_up(web, args.concurrency, hello_path, args.warmup, "W"))
    everyone += warm.people  # type: ignore[attr-defined]
    log(f"warm-up: {warm.requests} requests, {warm.errors_5xx} 5xx")

    people = applicants("S", args.applicants)
    everyone += people
    stats = Stats("surge")
    log(f"surge: {args.applicants} applicants, 5 requests each, {args.concurrency} at a time")
    cpu_before = sampler.cpu_snapshot()
    waits_before = Counter(sampler.pg_waits)
    asyncio.run(load(web, args.concurrency, stats, people, sampler))
    cpu_after = sampler.cpu_snapshot()
    waits = sampler.pg_waits - waits_before
    surge = stats.summary()
    surge["cpu_pct_of_one_core"] = harness.cpu_usage(cpu_before, cpu_after, stats.duration)
    surge["projection_lag_max_s"] = round(sampler.lag_between(stats.started, stats.ended), 2)
    surge["postgres_backend_samples"] = dict(waits.most_common(12))
    phases["surge"] = surge
    log(
        f"surge: {surge['requests']} requests in {surge['duration_s']} s = "
        f"{surge['req_per_s']} req/s, p99 {surge['p99_ms']} ms"
    )

    hello_stats = asyncio.run(hello(web, args.concurrency, hello_path, args.hello_seconds))
    phases["hello"] = hello_stats.summary() | {"path": hello_path}
    log(f"hello {hello_path}: {phases['hello']['req_per_s']} req/s")
    web.stop()
    peak_rss = dict(sampler.rss_peak)

    # 4: baseline, group commit off, same server configuration
    if not args.skip_baseline:
        off_env = dict(env, CAREPATH_GROUP_COMMIT="n", REGISTRY_GROUP_COMMIT="n")
        web, _ = start_web(ws, off_env, args, "web-gc-off")
        sampler.web = web
        warm = asyncio.run(warm_up(web, args.concurrency, hello_path, args.warmup // 2, "X"))
        everyone += warm.people  # type: ignore[attr-defined]
        count = max(200, int(args.applicants * args.baseline_fraction))
        people = applicants("B", count)
        everyone += people
        stats = Stats("baseline (group commit off)")
        log(f"baseline: {count} applicants with CAREPATH_GROUP_COMMIT=n")
        cpu_before = sampler.cpu_snapshot()
        asyncio.run(load(web, args.concurrency, stats, people, sampler))
        cpu_after = sampler.cpu_snapshot()
        baseline = stats.summary()
        baseline["cpu_pct_of_one_core"] = harness.cpu_usage(cpu_before, cpu_after, stats.duration)
        baseline["applicants"] = count
        phases["baseline"] = baseline
        log(f"baseline: {baseline['req_per_s']} req/s, p99 {baseline['p99_ms']} ms")
        web.stop()
        for pid, mb in sampler.rss_peak.items():
            peak_rss.setdefault(pid, mb)
    sampler.web = None

    # 5: service level, in this process, web stopped
    service: dict[str, Any] = {}
    if not args.skip_service:
        define_service_intake(env)
        person = 0
        for on in (True, False):
            label = "group" if on else "single"
            log(
                f"service level: Registry.register from {args.service_threads} threads for "
                f"{args.service_seconds:.0f} s, group commit {'on' if on else 'off'}"
            )
            service[label] = service_saves(
                env, on, args.service_threads, args.service_seconds, person
            )
            person = service[label].pop("next_person")
            log(f"  {service[label]['saves_per_s']} saves/s, errors {service[label]['errors']}")

    # 6: checks
    log("waiting for the worker to catch up")
    caught_up = harness.wait_for_allocator(env)
    registry = harness.build_registry(env, POSTGRES_POOL_SIZE=str(args.readback_threads + 2))
    try:
        intake_id = registry.get_intake(INTAKE).id
        checks = harness.check_writes(registry, everyone, threads=args.readback_threads)
    finally:
        registry.close()
    quota = harness.quota_of(env, intake_id)
    submitted = checks["submitted_by_intake"].get(intake_id.hex, 0)
    granted = quota.granted if quota else 0
    sampler.stop()
    lag_all = max((s["lag_s"] for s in sampler.samples), default=0.0)

    surge = phases["surge"]
    result: dict[str, Any] = {
        "applicants": args.applicants,
        "requests": surge["requests"],
        "duration_s": surge["duration_s"],
        "req_per_s": surge["req_per_s"],
        "journeys_per_s": surge["journeys_per_s"],
        "p50_ms": surge["p50_ms"],
        "p95_ms": surge["p95_ms"],
        "p99_ms": surge["p99_ms"],
        "errors_5xx": sum(p.get("errors_5xx", 0) for p in phases.values()),
        "refused_503": sum(p.get("refused_503", 0) for p in phases.values()),
        "lost": checks["lost"],
        "duplicates": checks["duplicates"],
        "granted": granted,
        "capacity": args.capacity,
        "submitted": submitted,
        "granted_ok": granted == min(args.capacity, submitted),
        "baseline_req_per_s": phases.get("baseline", {}).get("req_per_s"),
        "hello_req_per_s": phases["hello"]["req_per_s"],
        "hello_path": hello_path,
        "saves_per_s_group": service.get("group", {}).get("saves_per_s"),
        "saves_per_s_single": service.get("single", {}).get("saves_per_s"),
        "projection_lag_max_s": surge["projection_lag_max_s"],
        "projection_lag_max_s_whole_run": round(lag_all, 2),
        "projection_lag_resolution_s": sampler.interval,
        "peak_rss_mb_per_worker": round(max(peak_rss.values()), 1) if peak_rss else None,
        "peak_rss_mb_each_worker": sorted(round(v, 1) for v in peak_rss.values()),
        "synchronous_commit": pg["synchronous_commit"],
        "fsync": pg["fsync"],
        "wal_sync_method": pg["wal_sync_method"],
        "config": {
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread" if threads > 1 else "sync",
            "concurrency": args.concurrency,
            "sessions": args.sessions,
            "keepalive": args.keepalive,
            "group_commit_in_code": gc_code,
            "baseline_fraction": args.baseline_fraction,
            "cpus": os.cpu_count(),
            "load_generator": "asyncio + aiohttp, one process (CPU: cpu_pct_of_one_core)",
        },
        "phases": phases,
        "service_level": service,
        "checks": checks | {"caught_up": caught_up},
        "quota": quota.counts if quota else None,
        "lag_samples": len(sampler.samples),
        "sampler_errors": sampler.errors,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return result


def print_table(r: dict[str, Any]) -> None:
    c = r["config"]
    print()
    print(
        f"carepath surge: {r['applicants']} applicants, capacity {r['capacity']}; web "
        f"{c['workers']} workers x {c['threads']} threads ({c['worker_class']}), "
        f"{c['concurrency']} applicants in flight, sessions {c['sessions']}, "
        f"fsync={r['fsync']} synchronous_commit={r['synchronous_commit']}"
    )
    head = (
        f"{'phase':<30}{'requests':>9}{'secs':>8}{'req/s':>8}{'jrny/s':>8}"
        f"{'p50ms':>8}{'p95ms':>8}{'p99ms':>9}{'503':>6}{'5xx':>6}{'noans':>6}"
    )
    print(head)
    print("-" * len(head))
    names = {
        "surge": "surge (group commit default)",
        "hello": f"hello {r['hello_path']}",
        "baseline": "baseline (GROUP_COMMIT=n)",
    }
    for key in ("surge", "baseline", "hello"):
        p = r["phases"].get(key)
        if not p:
            continue
        print(
            f"{names[key]:<30}{p['requests']:>9}{p['duration_s']:>8.1f}{p['req_per_s']:>8.0f}"
            f"{p['journeys_per_s']:>8.1f}{p['p50_ms'] or 0:>8.1f}{p['p95_ms'] or 0:>8.1f}"
            f"{p['p99_ms'] or 0:>9.1f}{p['refused_503']:>6}{p['errors_5xx']:>6}{p['no_answer']:>6}"
        )
    print()
    surge = r["phases"]["surge"]
    print("surge per endpoint (p50 / p95 / p99 ms):")
    for name, e in surge["per_endpoint"].items():
        print(f"  {name:<12}{e['count']:>8}  {e['p50_ms']} / {e['p95_ms']} / {e['p99_ms']}")
    s = r["service_level"]
    if s:
        print(
            f"service level, Registry.register from {s['group']['threads']} threads: "
            f"group commit on {s['group']['saves_per_s']} saves/s (p99 {s['group']['p99_ms']} ms), "
            f"off {s['single']['saves_per_s']} saves/s (p99 {s['single']['p99_ms']} ms)"
            + ("" if c["group_commit_in_code"] else "  [group commit not in the code yet]")
        )
    print("CPU during the surge, % of one core (2 cores = 200%):")
    for name, pct in sorted(surge["cpu_pct_of_one_core"].items(), key=lambda kv: -kv[1]):
        print(f"  {name:<32}{pct:>7.1f}")
    waits = surge.get("postgres_backend_samples", {})
    if waits:
        total = sum(waits.values()) or 1
        print(
            "PostgreSQL backends of the bench database during the surge (sampled states/waits): "
            + ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in list(waits.items())[:8])
        )
    ck = r["checks"]
    print(
        f"checks: {ck['acknowledged_writes']} acknowledged writes, lost {r['lost']}, duplicates "
        f"{r['duplicates']}; granted {r['granted']} of capacity {r['capacity']}, submitted "
        f"{r['submitted']} -> {'ok' if r['granted_ok'] else 'WRONG'}; projection lag max "
        f"{r['projection_lag_max_s']} s; peak RSS per web worker {r['peak_rss_mb_per_worker']} MB"
    )
    for example in ck["lost_examples"][:5]:
        print(f"  lost: {example}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    harness.install_sigterm()
    ws = Workspace(keep_logs=args.keep_logs)
    failed = True
    result: dict[str, Any] | None = None
    try:
        result = run(args, ws)
        failed = False
    except KeyboardInterrupt:
        log("interrupted: stopping every process and dropping the database")
    finally:
        ws.close(failed)
    if result is None:
        return 130 if not failed else 1
    harness.write_json(args.output, result)
    print_table(result)
    ok = (
        result["lost"] == 0
        and result["duplicates"] == 0
        and result["errors_5xx"] == 0
        and result["granted_ok"]
    )
    print(
        f"{'SURGE OK' if ok else 'SURGE FAILED'}: {result['applicants']} applicants, "
        f"{result['req_per_s']:.0f} req/s (baseline {result['baseline_req_per_s']}, hello "
        f"{result['hello_req_per_s']}), p99 {result['p99_ms']} ms, 5xx {result['errors_5xx']}, "
        f"503 {result['refused_503']}, lost {result['lost']}, duplicates {result['duplicates']}, "
        f"granted {result['granted']}/{result['capacity']}, lag max "
        f"{result['projection_lag_max_s']} s -> {args.output}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
