"""What bench/surge.py and bench/drills.py share: a throw-away PostgreSQL database, the carepath
processes (gunicorn web, worker), an asyncio HTTP load generator that walks the applicant journey,
a sampler (projection lag, CPU per process, RSS per web worker) and the read-back checks.

Everything runs on 127.0.0.1 only, bounded in count and time; every process this module starts
runs in its own process group and is killed (by its id) when the bench ends, and the database is
dropped, even on Ctrl+C.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import psycopg

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PG = {"host": "127.0.0.1", "port": "5432", "user": "postgres"}
PG_DATA_PID = Path("/var/lib/postgresql/15/main/postmaster.pid")
INTAKE = "surge"
HELLO_PATHS = ("/healthz", "/api/v1/openapi.json")  # the second until /healthz exists
REGISTRY_FOLLOWED_TOPICS = (
    "domain.intake:Intake.Defined",
    "domain.intake:Intake.Opened",
    "domain.intake:Intake.Closed",
    "domain.intake:Intake.DeadlinesChecked",
    "domain.case:Case.Submitted",
    "domain.case:Case.Withdrawn",
)
# Inherited variables that would silently point the bench's processes at other storage.
_STORAGE_PREFIXES = ("CAREPATH_", "PERSISTENCE_MODULE", "REGISTRY_", "POSTGRES_", "SQLITE_")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# The database


def pg_admin() -> psycopg.Connection[Any]:
    return psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=5, **PG)


def create_database() -> str:
    name = f"carepath_bench_{secrets.token_hex(5)}"
    with pg_admin() as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return name


def drop_database(name: str) -> None:
    assert name.startswith("carepath_bench_")
    for _ in range(30):  # PostgreSQL may be restarting (drills)
        try:
            with pg_admin() as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            return
        except psycopg.Error as error:
            log(f"drop database {name}: {error}; retrying")
            time.sleep(1)


def pg_settings(dbname: str) -> dict[str, str]:
    with psycopg.connect(dbname=dbname, autocommit=True, **PG) as conn:
        return {
            key: str(conn.execute(f"SHOW {key}").fetchone()[0])  # type: ignore[index]
            for key in ("fsync", "synchronous_commit", "wal_sync_method", "max_connections")
        }


def postmaster() -> psutil.Process | None:
    try:
        return psutil.Process(int(PG_DATA_PID.read_text().split()[0]))
    except (OSError, ValueError, psutil.Error):
        return None


# The carepath processes


def carepath_env(dbname: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_STORAGE_PREFIXES)}
    env.update(
        {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": dbname,
            "POSTGRES_HOST": PG["host"],
            "POSTGRES_PORT": PG["port"],
            "POSTGRES_USER": PG["user"],
            "POSTGRES_PASSWORD": "",
            "CAREPATH_SECRET": "bench-secret-" + "s" * 40,
            "CAREPATH_RATELIMIT_ENABLED": "n",
            "CAREPATH_DATA_DIR": str(data_dir),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def carepath_bin() -> str:
    script = Path(sys.executable).with_name("carepath")
    if not script.exists():
        raise SystemExit(f"no carepath script beside {sys.executable}: run `make install`")
    return str(script)


def run_carepath(env: Mapping[str, str], *args: str) -> str:
    done = subprocess.run(
        [carepath_bin(), *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"carepath {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout.strip()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Proc:
    """One carepath command as its own process group; stop() kills the group by its id."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = dict(env)
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace: float = 8) -> None:
        if self.process is None:
            return
        pgid = self.process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.process = None

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _group_members(pgid: int) -> list[int]:
    members = []
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error):
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
    return members


class Web(Proc):
    """`carepath web` (gunicorn): the master and its forked workers."""

    def __init__(
        self,
        env: Mapping[str, str],
        log_dir: Path,
        *,
        port: int,
        workers: int | None,
        threads: int | None,
        tag: str = "web",
    ) -> None:
        argv = [carepath_bin(), "web", "--bind", f"127.0.0.1:{port}"]
        if workers:
            argv += ["--workers", str(workers)]
        if threads:
            argv += ["--threads", str(threads)]
        super().__init__(tag, argv, env, log_dir)
        self.port = port
        self.base = f"http://127.0.0.1:{port}"

    def workers(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.pid).children()
        except psutil.Error:
            return []

    def config(self) -> tuple[int, int] | None:
        """(workers, threads) as `carepath web` announced them in its log, once it has."""
        found = re.findall(r"with (\d+) workers x (\d+) threads", self.tail(100_000))
        return (int(found[-1][0]), int(found[-1][1])) if found else None

    def wait_ready(self, timeout: float = 60) -> tuple[int, int]:
        """Until HTTP answers and the master has every worker it announced; (workers, threads)."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise RuntimeError(f"carepath web exited:\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"{self.base}/api/v1/intakes", timeout=2) as answer:  # noqa: S310
                    config = self.config()
                    if answer.status == 200 and config and len(self.workers()) >= config[0]:
                        return config
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"carepath web did not answer in {timeout} s:\n{self.tail()}")
            time.sleep(0.1)


def default_workers() -> int:
    return 2 * (os.cpu_count() or 1) + 1


# The sampler: projection lag, CPU and memory


def tree_cpu(proc: psutil.Process) -> float:
    """CPU seconds of a process, of its reaped children and of its live children."""
    try:
        times = proc.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
    except psutil.Error:
        return 0.0
    for child in _children(proc):
        with contextlib.suppress(psutil.Error):
            own = child.cpu_times()
            total += own.user + own.system
    return total


def _children(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.children()
    except psutil.Error:
        return []


def self_cpu() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system


class Sampler(threading.Thread):
    """Every 0.5 s: the Registry's newest (followed) notification id, the Allocator's position,
    the CPU of each process group of interest, and the RSS of each web worker."""

    def __init__(self, dbname: str, interval: float = 0.5) -> None:
        super().__init__(name="sampler", daemon=True)
        self.dbname = dbname
        self.interval = interval
        self.stop_event = threading.Event()
        self.web: Web | None = None
        self.worker: Proc | None = None
        self.lock = threading.Lock()
        self.appeared: list[tuple[float, int]] = []  # (t, newest followed id) when it grew
        self.samples: list[dict[str, Any]] = []  # t, max_id, followed_max, position, lag
        self.rss_peak: dict[int, float] = {}  # web worker pid -> peak RSS in MB
        self.rss_current: dict[int, float] = {}
        self.errors = 0
        self.pg_waits: Counter[str] = Counter()  # backend states and wait events, sampled
        self.latest_lag = 0.0
        self._conn: psycopg.Connection[Any] | None = None
        self._followed_max = 0
        self._redis = _find_process("redis-server")

    def run(self) -> None:
        while not self.stop_event.wait(self.interval):
            try:
                self.sample()
            except Exception:  # noqa: BLE001 - PostgreSQL may be down (drills): count it, go on
                self.errors += 1
                if self._conn is not None:
                    with contextlib.suppress(Exception):
                        self._conn.close()
                self._conn = None

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=5)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()

    def sample(self) -> None:
        now = time.monotonic()
        self._sample_rss()
        if self._conn is None:
            self._conn = psycopg.connect(
                dbname=self.dbname, autocommit=True, connect_timeout=2, **PG
            )
        conn = self._conn
        max_id = conn.execute("SELECT max(notification_id) FROM registry_events").fetchone()[0]
        newer = conn.execute(
            "SELECT max(notification_id) FROM registry_events "
            "WHERE notification_id > %s AND topic = ANY(%s)",
            (self._followed_max, list(REGISTRY_FOLLOWED_TOPICS)),
        ).fetchone()[0]
        row = conn.execute(
            "SELECT max(notification_id) FROM allocator_tracking WHERE application_name = %s",
            ("Registry",),
        ).fetchone()
        position = int(row[0] or 0)
        for state, kind, event in conn.execute(
            "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (self.dbname,),
        ).fetchall():
            if state == "active":
                self.pg_waits[f"{kind}:{event}" if kind else "on CPU"] += 1
            elif state:
                self.pg_waits[state] += 1
        with self.lock:
            if newer is not None and newer > self._followed_max:
                self._followed_max = int(newer)
                self.appeared.append((now, self._followed_max))
            lag = self._lag(now, position)
            self.latest_lag = lag
            self.samples.append(
                {
                    "t": now,
                    "max_id": int(max_id or 0),
                    "followed_max": self._followed_max,
                    "position": position,
                    "lag_s": lag,
                }
            )

    def _lag(self, now: float, position: int) -> float:
        """Age of the oldest followed event the allocator has not processed (0 if none)."""
        if position >= self._followed_max:
            return 0.0
        for t, newest in self.appeared:  # first sample at which id position+1 existed
            if newest > position:
                return now - t
        return 0.0

    def _sample_rss(self) -> None:
        web = self.web
        if web is None or not web.alive():
            return
        current = {}
        for child in web.workers():
            with contextlib.suppress(psutil.Error):
                mb = child.memory_info().rss / 2**20
                current[child.pid] = mb
                self.rss_peak[child.pid] = max(self.rss_peak.get(child.pid, 0.0), mb)
        self.rss_current = current

    def lag_between(self, start: float, end: float) -> float:
        with self.lock:
            return max(
                (s["lag_s"] for s in self.samples if start <= s["t"] <= end + 1.0), default=0.0
            )

    # CPU accounting per phase

    def cpu_snapshot(self) -> dict[str, float]:
        machine = psutil.cpu_times()
        snap: dict[str, float] = {
            "bench (load generator)": self_cpu(),
            "MACHINE busy (all processes)": sum(machine) - machine.idle - machine.iowait,
            "MACHINE idle": machine.idle,
            "MACHINE iowait": machine.iowait,
            "MACHINE softirq": machine.softirq,
        }
        if self.web is not None and self.web.alive():
            master = psutil.Process(self.web.pid)
            try:
                times = master.cpu_times()
                snap["web master + exited workers"] = (
                    times.user + times.system + times.children_user + times.children_system
                )
            except psutil.Error:
                pass
            for child in self.web.workers():
                with contextlib.suppress(psutil.Error):
                    own = child.cpu_times()
                    snap[f"web worker {child.pid}"] = own.user + own.system
        if self.worker is not None and self.worker.alive():
            snap["carepath worker"] = tree_cpu(psutil.Process(self.worker.pid))
        pm = postmaster()
        if pm is not None:
            snap["postgresql (all backends)"] = tree_cpu(pm)
        if self._redis is not None:
            snap["redis-server"] = tree_cpu(self._redis)
        return snap


def _find_process(name: str) -> psutil.Process | None:
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] == name:
            return proc
    return None


def cpu_usage(before: dict[str, float], after: dict[str, float], wall: float) -> dict[str, float]:
    """Percent of one core per process over a phase (processes present at both ends), and what
    the rest of the machine used (other processes: e.g. a test suite running meanwhile)."""
    usage = {
        name: round(100 * (after[name] - before[name]) / wall, 1)
        for name in after
        if name in before and wall > 0
    }
    if "MACHINE busy (all processes)" in usage:
        ours = sum(v for k, v in usage.items() if not k.startswith("MACHINE"))
        usage["MACHINE other processes + kernel irq (not this bench)"] = round(
            max(0.0, usage["MACHINE busy (all processes)"] - ours), 1
        )
    return usage


# The applicant journey over HTTP


def about_you(prefix: str, n: int) -> dict[str, Any]:
    return {
        "family_name": "Santos",
        "given_names": "Maria Luz",
        "date_of_birth": "1985-04-27",
        "passport_number": f"{prefix}{n:09d}",
        "passport_country": "PH",
    }


CONTACT = {"email": "maria@example.org", "phone": "+63 917 123 4567", "country_of_residence": "CA"}
ELIGIBILITY = {"language_level": 5, "care_months": 24, "education": "secondary", "consent": True}
WRITES = ("register", "contact", "eligibility", "submit")


@dataclass
class Applicant:
    prefix: str
    n: int
    cookie: str | None = None
    reference: str | None = None
    access_code: str | None = None
    keys: dict[str, str] = field(default_factory=dict)
    acked: dict[str, int] = field(default_factory=dict)  # write -> version acknowledged
    unanswered: set[str] = field(default_factory=set)  # writes that had an attempt with no answer
    final_status: str | None = None
    abandoned: str | None = None


@dataclass
class Stats:
    """What one phase of load saw."""

    name: str
    started: float = 0.0
    ended: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter[int] = field(default_factory=Counter)
    refused_503: int = 0
    errors_5xx: int = 0
    no_answer: int = 0  # connection errors and time-outs
    unexpected: Counter[str] = field(default_factory=Counter)
    journeys_done: int = 0
    journeys_failed: int = 0
    replayed: int = 0
    last_write_ok: float = 0.0  # when a write was last answered below 500
    refused_codes: Counter[str] = field(default_factory=Counter)  # 503s by their body's code

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def duration(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    def all_latencies(self) -> list[float]:
        return [x for values in self.latencies.values() for x in values]

    def summary(self) -> dict[str, Any]:
        every = sorted(self.all_latencies())
        out: dict[str, Any] = {
            "requests": self.requests,
            "duration_s": round(self.duration, 2),
            "req_per_s": round(self.requests / self.duration, 1) if self.duration else 0.0,
            "journeys_per_s": round(self.journeys_done / self.duration, 1)
            if self.duration
            else 0.0,
            "journeys_done": self.journeys_done,
            "journeys_failed": self.journeys_failed,
            "p50_ms": _pct(every, 50),
            "p95_ms": _pct(every, 95),
            "p99_ms": _pct(every, 99),
            "max_ms": round(every[-1] * 1000, 1) if every else None,
            "errors_5xx": self.errors_5xx,
            "refused_503": self.refused_503,
            "refused_503_codes": dict(self.refused_codes),
            "no_answer": self.no_answer,
            "replayed": self.replayed,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "unexpected": dict(self.unexpected),
            "per_endpoint": {
                name: {
                    "count": len(values),
                    "p50_ms": _pct(sorted(values), 50),
                    "p95_ms": _pct(sorted(values), 95),
                    "p99_ms": _pct(sorted(values), 99),
                }
                for name, values in self.latencies.items()
            },
        }
        return out


def _error_code(raw: bytes) -> str:
    """The `code` of a JSON error body ("Busy": admission control; none: storage unavailable)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return "not JSON"
    return str(data.get("code") or "no code") if isinstance(data, dict) else "not an object"


def _pct(ordered: list[float], p: float) -> float | None:
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
    return round(ordered[index] * 1000, 1)


class GiveUp(Exception):
    pass


class Client:
    """The journey of one applicant after another, over one shared aiohttp connection pool."""

    def __init__(
        self,
        base: str,
        concurrency: int,
        *,
        default_retry: float = 1.0,
        give_up_after: float = 180.0,
        timeout: float = 60.0,
        keepalive: bool = False,
    ) -> None:
        self.keepalive = keepalive
        self.base = base
        self.concurrency = concurrency
        self.default_retry = default_retry
        self.give_up_after = give_up_after
        self.timeout = timeout
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Client:
        # Without keep-alive every request opens its own connection, as 45,000 browsers with
        # think time between pages would (gunicorn keeps an idle connection 5 s): the kernel then
        # spreads them over the workers, instead of a few pooled connections pinning them.
        connector = aiohttp.TCPConnector(
            limit=self.concurrency + 8, limit_per_host=0, force_close=not self.keepalive
        )
        self.session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.session is not None:
            await self.session.close()

    async def call(
        self,
        stats: Stats,
        label: str,
        method: str,
        path: str,
        applicant: Applicant | None = None,
        body: Any = None,
        key: str | None = None,
        write: str | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        """One request, retried with the same idempotency key on no answer, a 503 or a 5xx."""
        assert self.session is not None
        first = time.monotonic()
        while True:
            headers = {"Accept": "application/json"}
            if key:
                headers["Idempotency-Key"] = key
            if applicant is not None and applicant.cookie:
                headers["Cookie"] = f"carepath_session={applicant.cookie}"
            sent = time.monotonic()
            try:
                async with self.session.request(
                    method, self.base + path, json=body, headers=headers
                ) as response:
                    raw = await response.read()
                    status = response.status
                    answer_headers = dict(response.headers)
                    cookie = response.cookies.get("carepath_session")
            except (TimeoutError, aiohttp.ClientError, OSError):
                stats.no_answer += 1
                if write and applicant is not None:
                    applicant.unanswered.add(write)
                wait = self.default_retry
            else:
                stats.latencies[label].append(time.monotonic() - sent)
                stats.statuses[status] += 1
                if applicant is not None and cookie is not None and cookie.value:
                    applicant.cookie = cookie.value
                if status < 500:
                    if key:
                        stats.last_write_ok = time.monotonic()
                    if answer_headers.get("Idempotent-Replayed") == "true":
                        stats.replayed += 1
                    try:
                        data = json.loads(raw) if raw else None
                    except ValueError:
                        data = raw.decode(errors="replace")
                    return status, answer_headers, data
                if status == 503:
                    stats.refused_503 += 1
                    stats.refused_codes[_error_code(raw)] += 1
                else:
                    stats.errors_5xx += 1
                    if write and applicant is not None:
                        applicant.unanswered.add(write)
                try:
                    wait = float(answer_headers.get("Retry-After", self.default_retry))
                except ValueError:
                    wait = self.default_retry
            if time.monotonic() - first > self.give_up_after:
                raise GiveUp(f"{label}: no answer for {self.give_up_after:.0f} s")
            await asyncio.sleep(wait * random.uniform(0.9, 1.1))

    async def journey(self, stats: Stats, applicant: Applicant) -> None:
        """Register, contact, eligibility, submit, read the case; every write with a fresh key."""
        try:
            await self._journey(stats, applicant)
        except GiveUp as reason:
            applicant.abandoned = str(reason)
            stats.journeys_failed += 1
        else:
            stats.journeys_done += 1

    async def _journey(self, stats: Stats, a: Applicant) -> None:
        for write in WRITES:
            a.keys.setdefault(write, uuid.uuid4().hex)
        status, _, data = await self.call(
            stats,
            "register",
            "POST",
            f"/api/v1/intakes/{INTAKE}/registrations",
            a,
            about_you(a.prefix, a.n),
            a.keys["register"],
            "register",
        )
        if status != 201:
            raise self._unexpected(stats, "register", status, data)
        a.reference, a.access_code = data["reference"], data["access_code"]
        a.acked["register"] = data["version"]
        version = data["version"]
        for step, answers in (("contact", CONTACT), ("eligibility", ELIGIBILITY)):
            status, _, data = await self.call(
                stats,
                step,
                "PUT",
                f"/api/v1/case/steps/{step}",
                a,
                {"version": version, "answers": answers},
                a.keys[step],
                step,
            )
            if status != 200:
                raise self._unexpected(stats, step, status, data)
            version = a.acked[step] = data["version"]
        status, _, data = await self.call(
            stats,
            "submit",
            "POST",
            "/api/v1/case/submission",
            a,
            {"version": version},
            a.keys["submit"],
            "submit",
        )
        if status != 200:
            raise self._unexpected(stats, "submit", status, data)
        version = a.acked["submit"] = data["version"]
        status, _, data = await self.call(stats, "case", "GET", "/api/v1/case", a)
        if status != 200:
            raise self._unexpected(stats, "case", status, data)
        a.final_status = data["status"]
        if data["status"] != "submitted" or data["version"] != version:
            stats.unexpected[f"case read {data['status']} v{data['version']} != v{version}"] += 1

    @staticmethod
    def _unexpected(stats: Stats, label: str, status: int, data: Any) -> GiveUp:
        code = data.get("code") if isinstance(data, dict) else None
        stats.unexpected[f"{label} {status} {code or ''}".strip()] += 1
        return GiveUp(f"{label}: {status} {data}")

    async def hello(self, stats: Stats, path: str) -> None:
        assert self.session is not None
        sent = time.monotonic()
        try:
            async with self.session.get(self.base + path) as response:
                await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError, OSError):
            stats.no_answer += 1
            return
        stats.latencies["hello"].append(time.monotonic() - sent)
        stats.statuses[status] += 1
        if status == 503:
            stats.refused_503 += 1
        elif status >= 500:
            stats.errors_5xx += 1


async def run_journeys(
    client: Client,
    stats: Stats,
    applicants: list[Applicant],
    *,
    progress: Callable[[Stats, int, int], None] | None = None,
    progress_every: float = 5.0,
) -> None:
    """Walk every applicant's journey with `client.concurrency` applicants at a time."""
    queue = iter(applicants)
    stats.started = time.monotonic()

    async def lane() -> None:
        for applicant in queue:  # a shared iterator: each lane takes the next applicant
            await client.journey(stats, applicant)

    reporter = asyncio.create_task(_report(stats, len(applicants), progress, progress_every))
    try:
        await asyncio.gather(*(lane() for _ in range(client.concurrency)))
    finally:
        stats.ended = time.monotonic()
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter


async def _report(
    stats: Stats,
    total: int,
    progress: Callable[[Stats, int, int], None] | None,
    every: float,
) -> None:
    if progress is None:
        return
    while True:
        await asyncio.sleep(every)
        progress(stats, stats.journeys_done + stats.journeys_failed, total)


async def run_hello(client: Client, stats: Stats, path: str, seconds: float) -> None:
    stats.started = time.monotonic()
    deadline = stats.started + seconds

    async def lane() -> None:
        while time.monotonic() < deadline:
            await client.hello(stats, path)

    await asyncio.gather(*(lane() for _ in range(client.concurrency)))
    stats.ended = time.monotonic()


def pick_hello_path(base: str) -> str:
    for path in HELLO_PATHS:
        try:
            with urllib.request.urlopen(base + path, timeout=5) as answer:  # noqa: S310
                if answer.status == 200:
                    return path
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            continue
    raise RuntimeError("neither /healthz nor /api/v1/openapi.json answers 200")


class Progress:
    """A line every few seconds: journeys done, request rate since the last line, errors, lag."""

    def __init__(self, sampler: Sampler | None) -> None:
        self.sampler = sampler
        self.last = (time.monotonic(), 0)

    def __call__(self, stats: Stats, done: int, total: int) -> None:
        now, requests = time.monotonic(), stats.requests
        then, before = self.last
        self.last = (now, requests)
        rate = (requests - before) / (now - then) if now > then else 0.0
        recent = sorted(stats.latencies.get("register", [])[-2000:])
        lag = self.sampler.latest_lag if self.sampler else 0.0
        log(
            f"{stats.name}: {done}/{total} applicants ({100 * done / max(total, 1):.0f}%), "
            f"{rate:.0f} req/s, register p95 {_pct(recent, 95)} ms, 503 {stats.refused_503}, "
            f"5xx {stats.errors_5xx}, no answer {stats.no_answer}, "
            f"failed {stats.journeys_failed}, allocator lag {lag:.1f} s"
        )


# Read-back checks


def registry_env(environ: Mapping[str, str], group_commit: bool | None = None) -> dict[str, str]:
    from projections.persistence import application_env

    base = dict(environ)
    if group_commit is not None:
        base["CAREPATH_GROUP_COMMIT"] = "y" if group_commit else "n"
    env = application_env(base, "Registry", create_table=False)
    if group_commit is not None:
        env["REGISTRY_GROUP_COMMIT"] = "y" if group_commit else "n"
    return env


def build_registry(environ: Mapping[str, str], **extra: str) -> Any:
    from domain.registry import Registry

    env = registry_env(environ)
    env.update(extra)
    return Registry(env=env, secret=environ["CAREPATH_SECRET"].encode())


def wait_for_allocator(environ: Mapping[str, str], timeout: float = 600) -> dict[str, Any]:
    """Until the Allocator has decided on the newest followed event and the allocation view has
    applied the newest ledger event; returns the positions and how long it took."""
    from domain.allocator import Allocator
    from projections.persistence import application_env

    dbname = environ["POSTGRES_DBNAME"]
    allocator = Allocator(env=application_env(environ, "Allocator", create_table=False))
    started = time.monotonic()
    try:
        while True:
            with psycopg.connect(dbname=dbname, autocommit=True, **PG) as conn:
                followed = conn.execute(
                    "SELECT max(notification_id) FROM registry_events WHERE topic = ANY(%s)",
                    (list(REGISTRY_FOLLOWED_TOPICS),),
                ).fetchone()[0]
                ledger_max = conn.execute(
                    "SELECT max(notification_id) FROM allocator_events"
                ).fetchone()[0]
                view = conn.execute(
                    "SELECT max(notification_id) FROM view_tracking WHERE application_name = %s",
                    ("Allocator",),
                ).fetchone()[0]
            position = allocator.position("Registry")
            if position >= (followed or 0) and (view or 0) >= (ledger_max or 0):
                return {
                    "registry_followed_max": followed,
                    "allocator_position": position,
                    "view_position": view,
                    "waited_s": round(time.monotonic() - started, 1),
                }
            if time.monotonic() - started > timeout:
                raise RuntimeError(
                    f"the worker did not catch up in {timeout} s: allocator at {position} of "
                    f"{followed}, view at {view} of {ledger_max}"
                )
            time.sleep(0.5)
    finally:
        allocator.close()


def scan_log(registry: Any) -> dict[str, Any]:
    """Every Registry event, decoded: counts by type, idempotency keys, references, persons."""
    by_topic: Counter[str] = Counter()
    keys: Counter[str] = Counter()
    key_event: dict[str, tuple[str, int, str]] = {}  # key -> (case id hex, version, topic)
    registered: dict[str, dict[str, Any]] = {}  # case id hex -> reference, intake, passport
    persons: Counter[tuple[str, str]] = Counter()  # (intake id, passport) -> Registered count
    pointers: Counter[str] = Counter()  # case id -> CaseReference count
    submitted_by_intake: Counter[str] = Counter()
    position = 0
    while True:
        page = registry.recorder.select_notifications(
            start=position, limit=2000, inclusive_of_start=False
        )
        for notification in page:
            topic = notification.topic
            by_topic[topic.rsplit(":", 1)[-1]] += 1
            if not topic.startswith(("domain.case:", "domain.case")):
                continue
            event = registry.mapper.to_domain_event(notification)
            name = type(event).__qualname__
            if name == "CaseReference.Assigned":
                pointers[event.case_id.hex] += 1
                continue
            key = getattr(event, "idempotency_key", None)
            case_hex = event.originator_id.hex
            if key:
                keys[key] += 1
                key_event[key] = (case_hex, event.originator_version, name)
            if name == "Case.Registered":
                passport = event.answers.get("passport_number")
                registered[case_hex] = {
                    "reference": event.reference,
                    "intake": event.intake_id.hex,
                }
                persons[(event.intake_id.hex, passport)] += 1
            elif name == "Case.Submitted":
                submitted_by_intake[event.intake_id.hex] += 1
        if len(page) < 2000:
            break
        position = page[-1].id
    return {
        "by_topic": by_topic,
        "keys": keys,
        "key_event": key_event,
        "registered": registered,
        "persons": persons,
        "pointers": pointers,
        "submitted_by_intake": submitted_by_intake,
    }


def check_writes(
    registry: Any, applicants: Iterable[Applicant], threads: int = 8
) -> dict[str, Any]:
    """Every acknowledged write in the log with the version that was acknowledged, every case
    readable through sign-in with the acknowledged state, and nothing recorded twice."""
    applicants = list(applicants)
    log("reading back: scanning the Registry's log")
    scanned = scan_log(registry)
    keys, key_event = scanned["keys"], scanned["key_event"]
    lost: list[str] = []
    acknowledged = 0
    for a in applicants:
        for write, version in a.acked.items():
            acknowledged += 1
            found = key_event.get(a.keys[write])
            if found is None:
                lost.append(f"{a.prefix}{a.n} {write}: key {a.keys[write]} not in the log")
            elif found[1] != version:
                lost.append(f"{a.prefix}{a.n} {write}: acknowledged v{version}, log v{found[1]}")
    duplicate_keys = sum(count - 1 for count in keys.values() if count > 1)
    duplicate_persons = sum(count - 1 for count in scanned["persons"].values() if count > 1)
    duplicate_pointers = sum(count - 1 for count in scanned["pointers"].values() if count > 1)

    log(f"reading back: sign-in and get_case for {len(applicants)} applicants ({threads} threads)")
    mismatched: list[str] = []

    def read_back(a: Applicant) -> str | None:
        if "register" not in a.acked:
            return None
        try:
            case_id = registry.sign_in(a.reference, a.access_code)
            case = registry.get_case(case_id)
        except Exception as error:  # noqa: BLE001 - any failure is a finding to report
            return f"{a.prefix}{a.n}: sign-in/get_case failed: {type(error).__name__} {error}"
        newest = max(a.acked.values())
        if case.reference != a.reference:
            return f"{a.prefix}{a.n}: reference {case.reference} != acknowledged {a.reference}"
        if case.version < newest:
            return f"{a.prefix}{a.n}: case at v{case.version} < acknowledged v{newest}"
        if "submit" in a.acked and case.status.value != "submitted":
            return f"{a.prefix}{a.n}: acknowledged submission, case is {case.status.value}"
        return None

    with ThreadPoolExecutor(threads) as pool:
        for problem in pool.map(read_back, applicants, chunksize=64):
            if problem:
                mismatched.append(problem)
    return {
        "acknowledged_writes": acknowledged,
        "lost": len(lost) + len(mismatched),
        "lost_examples": (lost + mismatched)[:20],
        "duplicates": duplicate_keys + duplicate_persons + duplicate_pointers,
        "duplicate_keys": duplicate_keys,
        "duplicate_persons": duplicate_persons,
        "duplicate_reference_pointers": duplicate_pointers,
        "events_by_type": dict(scanned["by_topic"]),
        "submitted_by_intake": dict(scanned["submitted_by_intake"]),
        "registered_total": len(scanned["registered"]),
    }


def quota_of(environ: Mapping[str, str], intake_id: uuid.UUID) -> Any:
    from projections.allocation import AllocationQueries
    from projections.views import make_engine

    engine = make_engine(environ)
    try:
        for quota in AllocationQueries(engine).quotas():
            if quota.intake_id == intake_id:
                return quota
    finally:
        engine.dispose()
    return None


class Workspace:
    """The database, the temporary folder and every process, torn down in close()."""

    def __init__(self, keep_logs: bool = False) -> None:
        self.dbname = create_database()
        self.tmp = Path(tempfile.mkdtemp(prefix="carepath-bench-"))
        self.procs: list[Proc] = []
        self.keep_logs = keep_logs
        self.closers: list[Callable[[], None]] = []  # run before the processes stop
        self.cleanups: list[Callable[[], None]] = []  # run after they have stopped
        log(f"database {self.dbname}, logs in {self.tmp}")

    def add(self, proc: Proc) -> Proc:
        self.procs.append(proc)
        return proc

    def close(self, failed: bool) -> None:
        for close in reversed(self.closers):
            with contextlib.suppress(Exception):
                close()
        for proc in reversed(self.procs):
            with contextlib.suppress(Exception):
                proc.stop()
        for cleanup in self.cleanups:
            with contextlib.suppress(Exception):
                cleanup()
        if failed:
            for proc in self.procs:
                tail = proc.tail(1500)
                if tail:
                    log(f"--- end of {proc.name}.log ---\n{tail}")
        drop_database(self.dbname)
        log(f"dropped database {self.dbname}")
        if self.keep_logs or failed:
            log(f"logs kept in {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def install_sigterm() -> None:
    """SIGTERM ends the bench like Ctrl+C does, so the finally blocks clean up."""

    def handler(signum: int, _: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_suffix(".json.tmp")
    draft.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    draft.replace(path)


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None
