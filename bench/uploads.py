"""Stage-two uploads under load: invited applicants upload their five documents over tus 1.0 to a
real `carepath web` (gunicorn) on a fresh PostgreSQL database.

    python bench/uploads.py                   # 1,000 applicants x 5 files of 1-5 MB (make bench-uploads)
    python bench/uploads.py --applicants 200  # a quicker run

Setup (not measured): the bench registers, submits and invites the applicants itself, straight
through the Registry from a few threads plus one allocator settle, and signs each one in over
HTTP. Then --concurrency applicants at a time upload one file per checklist item, one after
another: creation, PATCHes of --chunk-mb, each file a valid PDF padded with comment lines or a
valid PNG, 1-5 MB (random sizes, unique content). Measured: MB/s of file content, HTTP requests
per second, p50/p95/p99 of each whole upload (creation to the final PATCH's answer), 5xx, and the
peak RSS of each web worker (sampled every 0.2 s) against its idle RSS after a warm-up: streaming
to disk means the growth per worker stays well below (uploads in flight per worker) x 5 MB.
`wrk -t2 -c64 -d5s` on /healthz calibrates the machine when wrk is installed.

Every 20th file is hashed by the bench and checked afterwards against its recorded event and its
blob (SHA-256 recomputed from the store); every applicant must end with five documents.
Writes bench/results/uploads-latest.json. The database is dropped and every process stopped at
the end, also on failure or Ctrl+C.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import harness
from harness import Web, Workspace, _pct, log

OUTPUT = harness.RESULTS / "uploads-latest.json"
INTAKE = "uploads"
MB = 2**20
ITEMS = ("identity", "language_test", "education", "care_work", "police")
TUS = {"Tus-Resumable": "1.0.0"}
CHECK_EVERY = 20  # every n-th file is hashed by the bench and checked against the store


# Files: valid, unique, cheap to make


_PAD_LINE = b"\n%" + b"p" * 62
_PAD = _PAD_LINE * (5 * MB // len(_PAD_LINE) + 2)
_HIGH = bytes(range(128, 256)) * 2  # maps every byte to 0x80-0xff: no ASCII signature by chance


def make_pdf(size: int, text: str) -> bytes:
    """A one-page PDF of exactly `size` bytes: the rest of its content stream is comments."""

    def build(padding: int) -> bytes:
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode() + b"\n%" + _PAD[:padding]
        parts = [b"%PDF-1.4\n"]
        offsets = []
        objects = (
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        )
        at = len(parts[0])
        for number, body in enumerate(objects, start=1):
            offsets.append(at)
            part = b"%d 0 obj\n" % number + body + b"\nendobj\n"
            parts.append(part)
            at += len(part)
        xref = [b"xref\n0 6\n0000000000 65535 f \n", *(b"%010d 00000 n \n" % o for o in offsets)]
        trailer = b"trailer\n<< /Size 6 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % at
        return b"".join([*parts, *xref, trailer])

    padding = max(0, size - 700)
    for _ in range(5):
        made = build(padding)
        if len(made) == size:
            return made
        padding += size - len(made)
    raise ValueError(f"cannot make a PDF of {size} bytes")


def make_png(size: int) -> bytes:
    """An RGB PNG of about `size` bytes whose pixels are noise (stored, not compressed)."""
    width = 1024
    height = max(1, size // (3 * width + 1))
    rows = os.urandom(height * 3 * width).translate(_HIGH)
    raw = b"".join(b"\x00" + rows[r * 3 * width : (r + 1) * 3 * width] for r in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x02\x00\x00\x00"
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 0))
        + chunk(b"IEND", b"")
    )


@dataclass(frozen=True)
class Planned:
    applicant: int
    item: str
    size: int
    png: bool

    def content(self) -> bytes:
        if self.png:
            return make_png(self.size)
        return make_pdf(self.size, f"{self.item} of applicant {self.applicant}")


# Setup: applicants registered, submitted and invited without going through HTTP


@dataclass
class Person:
    number: int
    reference: str
    access_code: str
    case_id: Any
    cookie: str = ""
    files: list[Planned] = field(default_factory=list)


def register_all(env: dict[str, str], count: int, threads: int = 16) -> list[Person]:
    from projections.worker import Worker

    registry = harness.build_registry(env)
    try:
        registry.define_intake(
            code=INTAKE,
            name="Uploads bench",
            stream="outside",
            capacity=count + 10_000,  # the warm-up and the streaming probe too
            policy="first_come",
            actor="bench",
        )
        registry.open_intake(INTAKE, actor="bench")

        def one(n: int) -> Person:
            about = {
                "family_name": "Santos",
                "given_names": "Maria Luz",
                "date_of_birth": "1985-04-27",
                "passport_number": f"B{n:08d}",
                "passport_country": "PH",
            }
            done = registry.register(
                INTAKE, about, language="en", idempotency_key=f"bench-r-{n:012d}"
            )
            steps = (
                ("contact", {"email": f"b{n}@example.org"}),
                ("eligibility", {"consent": True}),
            )
            for version, (step, answers) in enumerate(steps, start=1):
                registry.save_step(
                    done.case_id,
                    step,
                    answers,
                    expected_version=version,
                    language="en",
                    idempotency_key=f"bench-{step[0]}-{n:012d}",
                )
            registry.submit(
                done.case_id, expected_version=3, language="en", idempotency_key=f"bench-s-{n:012d}"
            )
            return Person(n, done.reference, done.access_code, done.case_id)

        with ThreadPoolExecutor(threads) as pool:
            people = list(pool.map(one, range(count)))
    finally:
        registry.close()
    Worker(env, env["CAREPATH_SECRET"].encode()).settle()
    return people


# Load


@dataclass
class Stats:
    started: float = 0.0
    ended: float = 0.0
    uploads: list[float] = field(default_factory=list)  # seconds, creation to last answer
    statuses: Counter[int] = field(default_factory=Counter)
    busy_503: int = 0
    errors_5xx: int = 0  # other than admission control's 503 Busy
    refused: Counter[str] = field(default_factory=Counter)
    no_answer: int = 0
    bytes_done: int = 0
    files_done: int = 0
    checked: list[tuple[Person, str, str]] = field(default_factory=list)  # person, doc, digest

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())


class Uploader:
    def __init__(self, base: str, stats: Stats, chunk: int) -> None:
        self.base = base
        self.stats = stats
        self.chunk = chunk
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Uploader:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, force_close=False),
            cookie_jar=aiohttp.DummyCookieJar(),  # each applicant's cookie is sent by hand
            timeout=aiohttp.ClientTimeout(total=300),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.session is not None
        await self.session.close()

    async def call(self, method: str, path: str, person: Person, **kwargs: Any) -> Any:
        """One exchange, retried after a 503 or a lost connection; (status, headers, body)."""
        assert self.session is not None
        headers = {**kwargs.pop("headers", {}), "Cookie": person.cookie}
        for attempt in range(50):
            try:
                async with self.session.request(
                    method, self.base + path, headers=headers, **kwargs
                ) as answer:
                    body = await answer.read()
                    self.stats.statuses[answer.status] += 1
                    if answer.status == 503:
                        self.stats.busy_503 += 1
                        await asyncio.sleep(min(2.0, 0.2 * (attempt + 1)))
                        continue
                    if answer.status >= 500:
                        self.stats.errors_5xx += 1
                    return answer.status, answer.headers, body
            except (TimeoutError, aiohttp.ClientError):
                self.stats.no_answer += 1
                await asyncio.sleep(0.5)
        raise RuntimeError(f"{method} {path}: no answer after 50 attempts")

    async def sign_in(self, person: Person) -> None:
        assert self.session is not None
        async with self.session.post(
            self.base + "/api/v1/session",
            json={"reference": person.reference, "access_code": person.access_code},
        ) as answer:
            if answer.status != 200:
                raise RuntimeError(f"sign-in {answer.status}: {await answer.text()}")
            morsel = answer.cookies["carepath_session"]
            person.cookie = f"{morsel.key}={morsel.value}"

    async def upload(self, person: Person, planned: Planned) -> None:
        content = planned.content()
        started = time.monotonic()
        name = f"{planned.item}.{'png' if planned.png else 'pdf'}"
        metadata = ",".join(
            f"{k} {base64.b64encode(v.encode()).decode()}"
            for k, v in (("item", planned.item), ("filename", name))
        )
        status, headers, body = await self.call(
            "POST",
            "/api/v1/case/uploads",
            person,
            headers={**TUS, "Upload-Length": str(len(content)), "Upload-Metadata": metadata},
        )
        if status != 201:
            self.stats.refused[f"create {status}"] += 1
            return
        location = headers["Location"]
        offset = 0
        document = None
        while offset < len(content):
            end = min(len(content), offset + self.chunk)
            status, headers, body = await self.call(
                "PATCH",
                location,
                person,
                data=content[offset:end],
                headers={
                    **TUS,
                    "Upload-Offset": str(offset),
                    "Content-Type": "application/offset+octet-stream",
                },
            )
            if status == 204:
                offset = int(headers["Upload-Offset"])
                document = headers.get("Carepath-Document-Id")
            elif status == 409:  # an earlier attempt got further than its answer said
                status, headers, _ = await self.call("HEAD", location, person, headers=TUS)
                offset = int(headers["Upload-Offset"])
                document = headers.get("Carepath-Document-Id")
            else:
                self.stats.refused[f"patch {status} {body[:80]!r}"] += 1
                return
        self.stats.uploads.append(time.monotonic() - started)
        self.stats.bytes_done += len(content)
        self.stats.files_done += 1
        if document and self.stats.files_done % CHECK_EVERY == 0:
            self.stats.checked.append((person, document, hashlib.sha256(content).hexdigest()))

    async def applicant(self, person: Person) -> None:
        for planned in person.files:
            await self.upload(person, planned)


async def load(base: str, people: list[Person], concurrency: int, chunk: int, stats: Stats) -> None:
    queue: asyncio.Queue[Person] = asyncio.Queue()
    for person in people:
        queue.put_nowait(person)
    total = sum(len(p.files) for p in people)
    async with Uploader(base, stats, chunk) as uploader:

        async def sign_in_all() -> None:
            semaphore = asyncio.Semaphore(32)

            async def one(person: Person) -> None:
                async with semaphore:
                    await uploader.sign_in(person)

            await asyncio.gather(*(one(p) for p in people))

        await sign_in_all()
        log(f"{len(people)} applicants signed in")

        async def worker() -> None:
            while True:
                try:
                    person = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await uploader.applicant(person)

        async def progress() -> None:
            last = (time.monotonic(), 0, 0)
            while True:
                await asyncio.sleep(5)
                now, done_bytes, reqs = time.monotonic(), stats.bytes_done, stats.requests
                then, bytes_before, reqs_before = last
                last = (now, done_bytes, reqs)
                recent = sorted(stats.uploads[-500:])
                log(
                    f"uploads: {stats.files_done}/{total} files "
                    f"({100 * stats.files_done / max(total, 1):.0f}%), "
                    f"{(done_bytes - bytes_before) / MB / (now - then):.1f} MB/s, "
                    f"{(reqs - reqs_before) / (now - then):.0f} req/s, "
                    f"upload p95 {_pct(recent, 95)} ms, 503 {stats.busy_503}, "
                    f"5xx {stats.errors_5xx}, refused {sum(stats.refused.values())}, "
                    f"no answer {stats.no_answer}, peak RSS {RSS.peak_summary()}"
                )

        stats.started = time.monotonic()
        ticker = asyncio.create_task(progress())
        try:
            await asyncio.gather(*(worker() for _ in range(concurrency)))
        finally:
            ticker.cancel()
            stats.ended = time.monotonic()


async def streaming_probe(base: str, people: list[Person], chunk: int) -> int:
    """Every person at once streams a 5 MB upload but its last byte, so no upload completes
    (nothing is inspected or recorded): what the web workers hold is what streaming costs."""
    stats = Stats()
    async with Uploader(base, stats, chunk) as uploader:
        await asyncio.gather(*(uploader.sign_in(p) for p in people))

        async def one(person: Person) -> None:
            content = make_pdf(5 * MB, f"probe {person.number}")
            metadata = f"item {base64.b64encode(b'identity').decode()},filename "
            metadata += base64.b64encode(b"probe.pdf").decode()
            status, headers, _ = await uploader.call(
                "POST",
                "/api/v1/case/uploads",
                person,
                headers={**TUS, "Upload-Length": str(len(content)), "Upload-Metadata": metadata},
            )
            assert status == 201, status
            location = headers["Location"]
            for offset in range(0, len(content) - 1, chunk):
                end = min(len(content) - 1, offset + chunk)
                status, _, _ = await uploader.call(
                    "PATCH",
                    location,
                    person,
                    data=content[offset:end],
                    headers={
                        **TUS,
                        "Upload-Offset": str(offset),
                        "Content-Type": "application/offset+octet-stream",
                    },
                )
                assert status == 204, status
            stats.bytes_done += len(content) - 1

        await asyncio.gather(*(one(p) for p in people))
    return stats.bytes_done


# Memory of the web workers


class RssSampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="rss", daemon=True)
        self.web: Web | None = None
        self.peak: dict[int, float] = {}
        self.idle: dict[int, float] = {}
        self.peak_anon: dict[int, float] = {}
        self.idle_anon: dict[int, float] = {}
        self.stop_event = threading.Event()
        self.lock = threading.Lock()

    def current(self) -> dict[int, tuple[float, float]]:
        """pid -> (RSS, its anonymous part: heap and stacks, without mapped files) in MB."""
        found = {}
        for child in self.web.workers() if self.web else []:
            with contextlib.suppress(psutil.Error, OSError, ValueError):
                rss = child.memory_info().rss / MB
                status = Path(f"/proc/{child.pid}/status").read_text()
                anon = int(re.search(r"RssAnon:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]
                found[child.pid] = (rss, anon)
        return found

    def mark_idle(self) -> None:
        with self.lock:
            now = self.current()
            self.idle = {pid: rss for pid, (rss, _) in now.items()}
            self.idle_anon = {pid: anon for pid, (_, anon) in now.items()}
            self.peak = dict(self.idle)
            self.peak_anon = dict(self.idle_anon)

    def run(self) -> None:
        while not self.stop_event.wait(0.2):
            now = self.current()
            with self.lock:
                for pid, (rss, anon) in now.items():
                    self.peak[pid] = max(self.peak.get(pid, 0.0), rss)
                    self.peak_anon[pid] = max(self.peak_anon.get(pid, 0.0), anon)

    def peak_summary(self) -> str:
        with self.lock:
            return f"{max(self.peak.values(), default=0):.0f} MB" if self.peak else "?"


RSS = RssSampler()


def calibrate(base: str) -> dict[str, Any] | None:
    wrk = shutil.which("wrk")
    if wrk is None:
        log("wrk is not installed (apt-get install -y wrk): no calibration")
        return None
    done = subprocess.run(
        [wrk, "-t2", "-c64", "-d5s", f"{base}/healthz"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    latency = re.search(r"Latency\s+(\S+)", done.stdout)
    return {
        "command": f"wrk -t2 -c64 -d5s {base}/healthz",
        "requests_per_s": float(found.group(1)) if found else None,
        "latency_avg": latency.group(1) if latency else None,
    }


def verify(env: dict[str, str], people: list[Person], stats: Stats) -> dict[str, Any]:
    """Five documents per applicant; the sampled files' digests in the events and the blobs."""
    from domain.blobs import FilesystemBlobStore
    from web.settings import Settings

    registry = harness.build_registry(env)
    store = FilesystemBlobStore(Settings.from_environ({"ENV": env}).documents_dir)
    try:
        counts = Counter(len(registry.get_case(p.case_id).documents) for p in people)
        mismatched = []
        for person, document_id, digest in stats.checked:
            found = registry.get_case(person.case_id).document(document_id)
            with store.open(digest) as blob:
                stored = hashlib.file_digest(blob, "sha256").hexdigest()
            if found is None or found.digest != digest or stored != digest:
                mismatched.append(f"{person.reference} {document_id}")
    finally:
        registry.close()
    return {
        "documents_per_applicant": {str(k): v for k, v in sorted(counts.items())},
        "sampled_digests_checked": len(stats.checked),
        "sampled_digests_mismatched": mismatched,
        "ok": counts == Counter({len(ITEMS): len(people)}) and not mismatched,
    }


def run(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    env = harness.carepath_env(
        ws.dbname,
        ws.tmp / "data",
        CAREPATH_MAX_IN_FLIGHT=str(args.max_in_flight),
        CAREPATH_ADMISSION_WAIT_MS=str(args.admission_wait_ms),
    )
    harness.run_carepath(env, "db", "init")
    started = time.monotonic()
    people = register_all(env, args.applicants)
    setup_s = time.monotonic() - started
    log(f"{len(people)} applicants registered, submitted and invited in {setup_s:.1f} s")
    for person in people:
        person.files = [
            Planned(person.number, item, rng.randint(MB, 5 * MB), rng.random() < args.png_share)
            for item in ITEMS
        ]

    web = ws.add(
        Web(env, ws.tmp, port=harness.free_port(), workers=args.workers, threads=args.threads)
    )
    web.start()
    workers, threads = web.wait_ready()
    RSS.web = web
    RSS.start()
    ws.closers.append(RSS.stop_event.set)
    calibration = calibrate(web.base)
    if calibration:
        log(f"calibration: {calibration['command']}: {calibration['requests_per_s']} req/s")

    # warm-up (not measured): every worker has imported and run what an upload needs
    warm = register_more(env, people, workers * 2)
    asyncio.run(load(web.base, warm, min(len(warm), workers * 2), args.chunk_mb * MB, Stats()))
    time.sleep(1)
    RSS.mark_idle()
    probe_idle = dict(RSS.idle_anon)
    probes = register_more(env, people + warm, args.concurrency)
    streamed = asyncio.run(streaming_probe(web.base, probes, args.chunk_mb * MB))
    time.sleep(0.5)
    streaming_growth = {
        pid: round(RSS.peak_anon.get(pid, 0) - v, 1) for pid, v in probe_idle.items()
    }
    log(
        f"streaming probe: {args.concurrency} uploads of 5 MB held one byte short "
        f"({streamed / MB:.0f} MB on disk): anonymous RSS growth per worker (MB) "
        f"{sorted(streaming_growth.values())}"
    )
    RSS.mark_idle()
    idle = dict(RSS.idle)
    log(f"idle RSS per worker (MB): {sorted(round(v) for v in idle.values())}")

    stats = Stats()
    asyncio.run(load(web.base, people, args.concurrency, args.chunk_mb * MB, stats))
    RSS.stop_event.set()
    duration = stats.ended - stats.started
    checks = verify(env, people, stats)

    per_worker = args.concurrency / workers
    bound_mb = per_worker * 5
    growth = {pid: round(RSS.peak.get(pid, 0) - mb, 1) for pid, mb in idle.items()}
    worst = max(growth.values(), default=0.0)
    streaming_worst = max(streaming_growth.values(), default=0.0)
    ordered = sorted(stats.uploads)
    result: dict[str, Any] = {
        "command": " ".join(["python", "bench/uploads.py", *sys.argv[1:]]),
        "applicants": len(people),
        "files": stats.files_done,
        "files_planned": len(people) * len(ITEMS),
        "png_share": args.png_share,
        "concurrency": args.concurrency,
        "chunk_mb": args.chunk_mb,
        "web": {"workers": workers, "threads": threads, "max_in_flight": args.max_in_flight},
        "cpu_count": os.cpu_count(),
        "setup_s": round(setup_s, 1),
        "duration_s": round(duration, 1),
        "mb": round(stats.bytes_done / MB, 1),
        "mb_per_s": round(stats.bytes_done / MB / duration, 1) if duration else None,
        "requests": stats.requests,
        "req_per_s": round(stats.requests / duration, 1) if duration else None,
        "uploads_per_s": round(stats.files_done / duration, 2) if duration else None,
        "upload_p50_ms": _pct(ordered, 50),
        "upload_p95_ms": _pct(ordered, 95),
        "upload_p99_ms": _pct(ordered, 99),
        "upload_max_ms": round(ordered[-1] * 1000, 1) if ordered else None,
        "statuses": {str(k): v for k, v in sorted(stats.statuses.items())},
        "errors_5xx": stats.errors_5xx,
        "busy_503": stats.busy_503,
        "no_answer": stats.no_answer,
        "refused": dict(stats.refused),
        "rss_idle_mb": {str(k): round(v, 1) for k, v in idle.items()},
        "rss_peak_mb": {str(k): round(v, 1) for k, v in RSS.peak.items() if k in idle},
        "rss_growth_mb": {str(k): v for k, v in growth.items()},
        "rss_growth_max_mb": worst,
        "anon_rss_growth_mb": {
            str(k): round(RSS.peak_anon.get(k, 0) - v, 1) for k, v in RSS.idle_anon.items()
        },
        "uploads_in_flight_per_worker": per_worker,
        "buffered_bound_mb": bound_mb,
        "streaming_probe_anon_growth_mb": {str(k): v for k, v in streaming_growth.items()},
        "streaming_probe_growth_max_mb": streaming_worst,
        "streams_to_disk": streaming_worst < bound_mb / 4,
        "whole_run_within_bound": worst < bound_mb / 2,
        "calibration": calibration,
        "checks": checks,
    }
    return result


def register_more(env: dict[str, str], people: list[Person], count: int) -> list[Person]:
    """A few more applicants for the warm-up, each with one small file per item."""
    registry = harness.build_registry(env)
    extra = []
    try:
        base = len(people) + 1_000_000
        for n in range(base, base + count):
            about = {
                "family_name": "Warm",
                "given_names": "Up",
                "date_of_birth": "1980-01-01",
                "passport_number": f"W{n:08d}",
                "passport_country": "PH",
            }
            done = registry.register(INTAKE, about, language="en", idempotency_key=f"warm-r-{n}")
            for version, (step, answers) in enumerate(
                (("contact", {"email": "w@example.org"}), ("eligibility", {"consent": True})),
                start=1,
            ):
                registry.save_step(
                    done.case_id,
                    step,
                    answers,
                    expected_version=version,
                    language="en",
                    idempotency_key=f"warm-{step[0]}-{n}",
                )
            registry.submit(
                done.case_id, expected_version=3, language="en", idempotency_key=f"warm-s-{n}"
            )
            person = Person(n, done.reference, done.access_code, done.case_id)
            person.files = [Planned(n, item, MB + i * MB, i == 0) for i, item in enumerate(ITEMS)]
            extra.append(person)
    finally:
        registry.close()
    from projections.worker import Worker

    Worker(env, env["CAREPATH_SECRET"].encode()).settle()
    return extra


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applicants", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64, help="applicants uploading at once")
    parser.add_argument("--chunk-mb", type=int, default=2, help="bytes per PATCH")
    parser.add_argument("--png-share", type=float, default=0.2, help="share of files that are PNG")
    parser.add_argument("--workers", type=int, default=None, help="default: carepath web's")
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument(
        "--max-in-flight", type=int, default=16, help="CAREPATH_MAX_IN_FLIGHT per worker"
    )
    parser.add_argument("--admission-wait-ms", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    return parser.parse_args(argv)


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
    r = result
    print(
        f"streaming: {r['concurrency']} uploads of 5 MB in flight at once (not completed) grew a "
        f"worker's anonymous RSS by at most {r['streaming_probe_growth_max_mb']} MB, against "
        f"{r['buffered_bound_mb']:g} MB if each were buffered -> "
        f"{'streams to disk' if r['streams_to_disk'] else 'BUFFERS'}"
    )
    print(
        f"web workers: idle RSS {sorted(r['rss_idle_mb'].values())} MB, peak "
        f"{sorted(r['rss_peak_mb'].values())} MB; growth max {r['rss_growth_max_mb']} MB vs "
        f"{r['uploads_in_flight_per_worker']:g} uploads in flight per worker x 5 MB = "
        f"{r['buffered_bound_mb']:g} MB if buffered"
        f"{'' if r['whole_run_within_bound'] else ' (held by the content checks at completion, not by streaming)'}"
    )
    ok = r["checks"]["ok"] and r["errors_5xx"] == 0 and r["streams_to_disk"]
    print(
        f"{'UPLOADS OK' if ok else 'UPLOADS FAILED'}: {r['applicants']} applicants, "
        f"{r['files']}/{r['files_planned']} files, {r['mb']:.0f} MB in {r['duration_s']} s = "
        f"{r['mb_per_s']} MB/s, {r['req_per_s']} req/s, upload p50/p95/p99 "
        f"{r['upload_p50_ms']}/{r['upload_p95_ms']}/{r['upload_p99_ms']} ms, 5xx "
        f"{r['errors_5xx']}, 503 {r['busy_503']}, RSS growth max {r['rss_growth_max_mb']} MB "
        f"(bound {r['buffered_bound_mb']:g} MB), wrk /healthz "
        f"{(r['calibration'] or {}).get('requests_per_s')} req/s -> {args.output}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
