"""Charts for the staff pages, drawn on the server as SVG so they need no JavaScript.

Written here rather than with a plotting library: two small charts (a step line against a limit,
and bars) are some sixty lines of arithmetic, and a library would add megabytes and a renderer
to a web process that only needs markup. Every value put into the markup is a number or text
escaped by markupsafe.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

WIDTH, HEIGHT = 480, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 26, 40
FONT = 15
MAX_BARS = 120


@dataclass(frozen=True)
class Point:
    at: datetime
    value: int


def _scale(value: float, low: float, high: float, out_low: float, out_high: float) -> float:
    if high == low:
        return out_low
    return out_low + (value - low) * (out_high - out_low) / (high - low)


def _frame(
    title: str, description: str, body: list[str], y_max: int, first: str, last: str
) -> Markup:
    plot_bottom = HEIGHT - BOTTOM
    ident = "chart-" + hashlib.sha256(title.encode()).hexdigest()[:8]  # one per chart title
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" aria-labelledby="{ident}-t {ident}-d">',
        f'<title id="{ident}-t">{escape(title)}</title>'
        f'<desc id="{ident}-d">{escape(description)}</desc>',
        f'<line x1="{LEFT}" y1="{plot_bottom}" x2="{WIDTH - RIGHT}" y2="{plot_bottom}" '
        'stroke="#0b0c0c" stroke-width="1"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{plot_bottom}" stroke="#0b0c0c" '
        'stroke-width="1"/>',
        f'<text x="{LEFT - 6}" y="{TOP + 5}" text-anchor="end" font-size="{FONT}">{y_max:,}</text>',
        f'<text x="{LEFT - 6}" y="{plot_bottom}" text-anchor="end" font-size="{FONT}">0</text>',
        f'<text x="{LEFT}" y="{HEIGHT - 12}" font-size="{FONT}">{escape(first)}</text>',
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 12}" text-anchor="end" font-size="{FONT}">'
        f"{escape(last)}</text>",
        *body,
        "</svg>",
    ]
    return Markup("".join(parts))  # noqa: S704 - built from numbers and escaped text only


def minute_label(at: datetime, zone: str) -> str:
    """The wall-clock minute in `zone`; the page names the zone beside the chart."""
    aware = at if at.tzinfo else at.replace(tzinfo=UTC)  # the read models keep UTC
    return aware.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def held_against_capacity(
    points: Sequence[Point],
    capacity: int,
    *,
    title: str,
    description: str,
    limit_label: str,
    zone: str = "UTC",
) -> Markup:
    """A step line of places held over time, under a dashed line at the capacity."""
    y_max = max([capacity, *(p.value for p in points)], default=1) or 1
    plot_bottom, plot_right = HEIGHT - BOTTOM, WIDTH - RIGHT
    body: list[str] = []
    cap_y = _scale(capacity, 0, y_max, plot_bottom, TOP)
    body.append(
        f'<line x1="{LEFT}" y1="{cap_y:.1f}" x2="{plot_right}" y2="{cap_y:.1f}" stroke="#d4351c" '
        'stroke-width="2" stroke-dasharray="6 4"/>'
        f'<text x="{plot_right}" y="{cap_y - 4:.1f}" text-anchor="end" font-size="{FONT}" '
        f'fill="#d4351c">{escape(limit_label)} {capacity:,}</text>'
    )
    if points:
        start, end = points[0].at.timestamp(), points[-1].at.timestamp()
        coords: list[str] = []
        previous_y = plot_bottom
        for point in points:
            x = _scale(point.at.timestamp(), start, end, LEFT, plot_right) if end > start else LEFT
            y = _scale(point.value, 0, y_max, plot_bottom, TOP)
            coords.append(f"{x:.1f},{previous_y:.1f} {x:.1f},{y:.1f}")
            previous_y = y
        coords.append(f"{plot_right:.1f},{previous_y:.1f}")
        body.append(
            f'<polyline points="{" ".join(coords)}" fill="none" stroke="#1d70b8" stroke-width="3"/>'
        )
    first = minute_label(points[0].at, zone) if points else ""
    last = minute_label(points[-1].at, zone) if points else ""
    return _frame(title, description, body, y_max, first, last)


def bars(points: Sequence[Point], *, title: str, description: str, zone: str = "UTC") -> Markup:
    """Bars of a count per period; more than MAX_BARS periods are summed into wider bars."""
    grouped = _group(points)
    y_max = max((p.value for p in grouped), default=0) or 1
    plot_bottom, plot_right = HEIGHT - BOTTOM, WIDTH - RIGHT
    body: list[str] = []
    if grouped:
        slot = (plot_right - LEFT) / len(grouped)
        for index, point in enumerate(grouped):
            y = _scale(point.value, 0, y_max, plot_bottom, TOP)
            body.append(
                f'<rect x="{LEFT + index * slot + 1:.1f}" y="{y:.1f}" '
                f'width="{max(slot - 2, 1):.1f}" height="{plot_bottom - y:.1f}" fill="#00703c">'
                f"<title>{escape(minute_label(point.at, zone))}: {point.value:,}</title></rect>"
            )
    first = minute_label(grouped[0].at, zone) if grouped else ""
    last = minute_label(grouped[-1].at, zone) if grouped else ""
    return _frame(title, description, body, y_max, first, last)


def _group(points: Sequence[Point]) -> list[Point]:
    if len(points) <= MAX_BARS:
        return list(points)
    size = -(-len(points) // MAX_BARS)  # ceiling division
    return [
        Point(points[i].at, sum(p.value for p in points[i : i + size]))
        for i in range(0, len(points), size)
    ]
