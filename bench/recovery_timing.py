"""Recovery timing: does the time of `POST /api/v1/recovery` tell a match from a miss?

A match records `Case.RecoveryRequested` (a write, and an email queued); a miss writes nothing.
CAREPATH_RECOVERY_FLOOR_MS pads both to at least the floor. This sends N matching and N missing
requests, alternately, through the app in-process on a fresh SQLite folder (the embedded default),
once with no floor (the baseline: the raw difference) and once with the floor, and prints the
median, p95 and max of each, and the difference of the medians.

    python bench/recovery_timing.py                  # 200 of each, floor 300 ms
    python bench/recovery_timing.py --requests 50 --floor-ms 150

Progress on stderr; one summary line per run at the end. No timing is asserted: this measures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import CONTACT, about_you, make_app  # noqa: E402

BIRTH = "1985-04-27"  # about_you()'s


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(requests: int, floor_ms: float, folder: Path) -> dict[str, list[float]]:
    env = {"CAREPATH_DATA_DIR": str(folder), "CAREPATH_SECRET": "t" * 40}
    app = make_app(env, RECOVERY_FLOOR_SECONDS=floor_ms / 1000)
    try:
        client = app.test_client()
        made = client.post(
            "/api/v1/intakes/test/registrations",
            json=about_you(1),
            headers={"Idempotency-Key": "bench-register-0001"},
        )
        assert made.status_code == 201, made.text
        saved = client.put(
            "/api/v1/case/steps/contact",
            json={"version": 1, "answers": CONTACT},
            headers={"Idempotency-Key": "bench-contact-0001"},
        )
        assert saved.status_code == 200, saved.text
        reference = made.json["reference"]
        bodies = {
            "match": {"reference": reference, "date_of_birth": BIRTH},
            "miss": {"reference": reference, "date_of_birth": "1990-01-01"},
        }
        times: dict[str, list[float]] = {"match": [], "miss": []}
        asker = app.test_client()
        for n in range(requests):
            for kind, body in bodies.items():
                started = time.perf_counter()
                answer = asker.post("/api/v1/recovery", json=body)
                times[kind].append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 202, answer.text
            if (n + 1) % 20 == 0 or n + 1 == requests:
                print(
                    f"\r  floor {floor_ms:g} ms: {n + 1}/{requests} pairs", end="", file=sys.stderr
                )
        print(file=sys.stderr)
        return times
    finally:
        app.extensions["carepath.registry"].close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="of each kind (default 200)")
    parser.add_argument("--floor-ms", type=float, default=300, help="the floor (default 300)")
    options = parser.parse_args()
    if options.requests < 1 or options.floor_ms < 0:
        parser.error("--requests must be at least 1 and --floor-ms at least 0")
    lines = []
    with tempfile.TemporaryDirectory(prefix="carepath-recovery-bench-") as scratch:
        for floor in (0.0, options.floor_ms):
            times = run(options.requests, floor, Path(scratch) / f"floor-{floor:g}")
            cells = []
            for kind in ("match", "miss"):
                got = times[kind]
                cells.append(
                    f"{kind} median {statistics.median(got):.1f} p95 {quantile(got, 0.95):.1f}"
                    f" max {max(got):.1f}"
                )
            gap = statistics.median(times["match"]) - statistics.median(times["miss"])
            lines.append(
                f"floor {floor:g} ms, {options.requests} of each (ms): {'; '.join(cells)};"
                f" match - miss medians {gap:+.1f}"
            )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
