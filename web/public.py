"""Public pages: what anyone, signed in or not, may see of an intake and how its places are
given. A lottery's inputs are published here the moment each exists: the commitment to its seed
at opening, the seed at the close, the entries digest, combined seed and fairness figures at the
draw, so an outsider can check the draw (README, "The lottery, precisely") without asking us.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template

from domain.registry import Registry
from domain.values import IntakeView, Policy
from projections.allocation import AllocationQueries, ReadModelUnavailable

bp = Blueprint("public", __name__)


def draw_record(intake: IntakeView) -> dict[str, Any] | None:
    """A lottery's published inputs as they stand now; None for first come. Fields not yet
    known are None; `read_model_unavailable` is True when the draw could not be read."""
    if intake.policy is not Policy.LOTTERY:
        return None
    record: dict[str, Any] = {
        "seed_commitment": intake.seed_commitment or None,
        "seed": intake.seed or None,
        "entries": None,
        "entries_digest": None,
        "combined_seed": None,
        "fairness": None,
        "read_model_unavailable": False,
    }
    if intake.seed:
        queries: AllocationQueries = current_app.extensions["carepath.allocations"]
        try:
            draw = queries.draw_of(intake.id)
        except ReadModelUnavailable:
            record["read_model_unavailable"] = True
            draw = None
        for key in ("entries", "entries_digest", "combined_seed", "fairness"):
            record[key] = (draw or {}).get(key)
    return record


@bp.get("/intakes/<code>")
def intake(code: str) -> str:
    registry: Registry = current_app.extensions["carepath.registry"]
    found = registry.get_intake(code)
    return render_template("public/intake.html", intake=found, draw=draw_record(found))
