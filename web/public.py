"""Public pages: what anyone, signed in or not, may see of an intake and how its places are
given. A lottery's inputs are published here the moment each exists (README, "The lottery,
precisely"): at opening the commitment to the secret and the beacon round fixed for the draw;
at the close the entries and their digest; then the draw's inputs (the secret, revealed, and the
beacon's signed value or the operator's); then the seed, combined seed and fairness figures. With
them an outsider can check the draw without asking us.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, current_app, render_template

from domain.beacon import Chain, round_time
from domain.policies import draw_round
from domain.registry import Registry
from domain.values import DrawMode, IntakeView, Policy
from projections.allocation import AllocationQueries, ReadModelUnavailable

bp = Blueprint("public", __name__)

INPUT_FIELDS = ("secret", "source", "round", "signature", "randomness")


def draw_record(intake: IntakeView) -> dict[str, Any] | None:
    """A lottery's published inputs as they stand now; None for first come. Fields not yet
    known are None; `read_model_unavailable` is True when the draw could not be read."""
    if intake.policy is not Policy.LOTTERY:
        return None
    inputs = {key: intake.draw_inputs.get(key) for key in INPUT_FIELDS}
    record: dict[str, Any] = {
        "mode": intake.draw.get("mode"),  # None until the intake opens
        "seed_commitment": intake.seed_commitment or None,
        "beacon": beacon_record(intake),
        "entries": None,
        "entries_digest": None,
        "inputs": inputs if intake.draw_inputs else None,
        "seed": intake.seed or None,
        "combined_seed": None,
        "fairness": None,
        "read_model_unavailable": False,
    }
    if intake.closed_at is not None:  # the entries are fixed at the close, the rest follows
        queries: AllocationQueries = current_app.extensions["carepath.allocations"]
        try:
            draw = queries.draw_of(intake.id) or {}
        except ReadModelUnavailable:
            record["read_model_unavailable"] = True
            draw = {}
        for key in ("entries", "entries_digest", "combined_seed", "fairness"):
            record[key] = draw.get(key)
        record["seed"] = record["seed"] or draw.get("seed")
    return record


def beacon_record(intake: IntakeView) -> dict[str, Any] | None:
    """The beacon chain and round of a beacon draw: the round fixed at opening and, once the
    intake has closed, the round the draw uses (a later one if the close came late)."""
    if intake.draw.get("mode") != DrawMode.BEACON.value:
        return None
    chain = Chain.from_dict(intake.draw["chain"])
    fixed = int(intake.draw["round"])
    delay = int(intake.draw.get("delay_seconds", 0))
    if intake.draw_inputs:
        used = int(intake.draw_inputs["round"])
    elif intake.closed_at is not None:
        used = draw_round(
            fixed, chain.genesis_time, chain.period, intake.closed_at.timestamp(), delay
        )
    else:
        used = fixed
    return {
        **chain.as_dict(),
        "round_fixed_at_opening": fixed,
        "round": used,
        "round_time": round_time(chain, used).isoformat(),
        "delay_seconds": delay,
    }


@bp.get("/intakes/<code>")
def intake(code: str) -> str:
    registry: Registry = current_app.extensions["carepath.registry"]
    found = registry.get_intake(code)
    draw = draw_record(found)
    beacon = draw and draw["beacon"]
    when = datetime.fromisoformat(beacon["round_time"]) if beacon else None
    return render_template("public/intake.html", intake=found, draw=draw, beacon_time=when)
