"""Allocation policies as pure functions: the lottery's seed, digest and ranking, and its fairness check.

These functions are the published algorithm: an auditor's program that implements the same few
lines over an export of the log must reach the same ranking. See README, "The lottery".
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from uuid import UUID


def lottery_seed(secret: bytes, intake_id: UUID) -> str:
    """The intake's secret seed: 32 bytes as hex, kept out of the log until the draw."""
    return hmac.new(secret, f"lottery-seed|{intake_id.hex}".encode(), hashlib.sha256).hexdigest()


def commitment(seed: str) -> str:
    """What is recorded at open: SHA-256 of the seed's hex text, as hex."""
    return hashlib.sha256(seed.encode()).hexdigest()


def entries_digest(case_ids: Iterable[UUID]) -> str:
    """SHA-256 over the entries' ids: lower-case hex, sorted, one per line, no final newline."""
    lines = "\n".join(sorted(case_id.hex for case_id in case_ids))
    return hashlib.sha256(lines.encode()).hexdigest()


def combined_seed(seed: str, digest: str) -> str:
    """SHA-256 of the seed's hex text followed by the entries digest's hex text."""
    return hashlib.sha256((seed + digest).encode()).hexdigest()


def rank_key(combined: str, case_id: UUID) -> str:
    """An entry's draw number: SHA-256 of the combined seed's hex text and the case id's hex."""
    return hashlib.sha256((combined + case_id.hex).encode()).hexdigest()


def lottery_ranking(seed: str, case_ids: Iterable[UUID]) -> tuple[str, str, list[UUID]]:
    """(entries digest, combined seed, entries from first drawn to last).

    Entries are ordered by their draw number, ascending, compared as hex text; ties (never seen
    with SHA-256) fall back to the case id.
    """
    entries = list(case_ids)
    digest = entries_digest(entries)
    combined = combined_seed(seed, digest)
    ranked = sorted(entries, key=lambda case_id: (rank_key(combined, case_id), case_id.hex))
    return digest, combined, ranked


@dataclass(frozen=True)
class RankSum:
    """The Wilcoxon-Mann-Whitney rank-sum test of the selected entries' positions in the log
    against the others': does not depend on any cut into groups."""

    selected: int
    others: int
    u: float  # U of the selected: how many (selected, other) pairs have the selected one later
    z: float  # normal approximation with continuity correction; < 0: the selected came earlier
    p_value: float  # two-sided

    def as_dict(self) -> dict[str, object]:
        return {
            "selected": self.selected,
            "others": self.others,
            "u": self.u,
            "z": round(self.z, 6),
            "p_value": round(self.p_value, 6),
        }


@dataclass(frozen=True)
class Fairness:
    """Selection rate by position decile, a chi-square test of independence, and a rank-sum
    test of positions."""

    deciles: tuple[tuple[int, int], ...]  # (entries, selected) per decile, earliest first
    chi_square: float
    degrees_of_freedom: int
    p_value: float
    rank_sum: RankSum | None = None

    def as_dict(self) -> dict[str, object]:
        figures: dict[str, object] = {
            "deciles": [list(d) for d in self.deciles],
            "chi_square": round(self.chi_square, 6),
            "degrees_of_freedom": self.degrees_of_freedom,
            "p_value": round(self.p_value, 6),
        }
        if self.rank_sum is not None:
            figures["rank_sum"] = self.rank_sum.as_dict()
        return figures


def rank_sum(in_order: Sequence[UUID], selected: set[UUID]) -> RankSum:
    """U = R - n1(n1+1)/2, R the sum of the selected entries' positions (1-based); under a fair
    draw U has mean n1*n2/2 and variance n1*n2*(n+1)/12 (positions are distinct: no ties)."""
    n = len(in_order)
    positions = [i for i, case_id in enumerate(in_order, start=1) if case_id in selected]
    n1 = len(positions)
    n2 = n - n1
    u = sum(positions) - n1 * (n1 + 1) / 2
    if n1 == 0 or n2 == 0:
        return RankSum(n1, n2, u, 0.0, 1.0)
    mean = n1 * n2 / 2
    deviation = math.sqrt(n1 * n2 * (n + 1) / 12)
    gap = max(abs(u - mean) - 0.5, 0.0)
    z = math.copysign(gap / deviation, u - mean)
    return RankSum(n1, n2, u, z, math.erfc(abs(z) / math.sqrt(2)))


def fairness(in_order: Sequence[UUID], selected: set[UUID]) -> Fairness:
    """Would a draw favour early or late registrants (as the DV-2012 draw did)?

    `in_order`: the entries in the order their Case.Submitted was committed to the Registry's log.
    They are split into ten groups by that position (group g holds positions g*n//10 up to
    (g+1)*n//10, 0-based, end excluded); the chi-square statistic compares selected / not selected
    counts across groups with what independence predicts. The rank-sum test compares positions
    directly, without the cut.
    """
    n = len(in_order)
    groups = min(10, n)
    deciles = []
    for g in range(groups):
        part = in_order[g * n // groups : (g + 1) * n // groups]
        deciles.append((len(part), sum(1 for case_id in part if case_id in selected)))
    total_selected = sum(s for _, s in deciles)
    rate = total_selected / n if n else 0.0
    chi = 0.0
    for size, chosen in deciles:
        for observed, expected in ((chosen, size * rate), (size - chosen, size * (1 - rate))):
            if expected > 0:
                chi += (observed - expected) ** 2 / expected
    df = max(groups - 1, 0)
    p_value = chi_square_survival(chi, df) if df and 0 < rate < 1 else 1.0
    return Fairness(tuple(deciles), chi, df, p_value, rank_sum(in_order, selected))


def chi_square_survival(x: float, df: int) -> float:
    """P(X >= x) for a chi-square variable with df degrees of freedom.

    The regularised upper incomplete gamma Q(df/2, x/2), by its series or continued fraction
    (Numerical Recipes 6.2); written here to keep the domain free of SciPy.
    """
    if x <= 0:
        return 1.0
    a, y = df / 2.0, x / 2.0
    log_prefix = a * math.log(y) - y - math.lgamma(a)
    if y < a + 1:
        term = total = 1.0 / a
        k = a
        for _ in range(1000):
            k += 1
            term *= y / k
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    tiny = 1e-300
    b = y + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        step = d * c
        h *= step
        if abs(step - 1) < 1e-15:
            break
    return min(1.0, math.exp(log_prefix) * h)


def draw_seed(secret: str, randomness: str) -> str:
    """A beacon or operator draw's seed: SHA-256 of the secret's hex text followed by the
    randomness's hex text. Neither the operator (who knows the secret) nor the beacon (whose
    value is public once the round is out) can know it alone before the round."""
    return hashlib.sha256((secret + randomness).encode()).hexdigest()


def draw_round(
    fixed_round: int, genesis_time: int, period: int, closed_at: float, delay: int
) -> int:
    """The beacon round a draw uses: the round fixed at opening, or, if the intake closed so late
    that this round was out less than `delay` seconds after the close, the first round published
    at least `delay` seconds after it (times in Unix seconds; round r is published at
    genesis_time + (r - 1) * period)."""
    earliest = closed_at + delay
    after_close = max(1, math.ceil((earliest - genesis_time) / period) + 1)
    return max(fixed_round, after_close)
