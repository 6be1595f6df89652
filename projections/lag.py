"""How far each follower of a log is behind: the events it follows that it has not processed.

A follower reads only the topics it follows and records the position of the last of those, so
`head - position` overstates its lag whenever the log ends with events it ignores (a
registration ends with its reference pointer, which no view follows). Counting the followed
events after the position is exact, and cheap while the lag is small (it stops at `cap`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.application import Application

from domain.allocator import Allocator
from domain.registry import Registry
from projections.allocation import AllocationView
from projections.casework import CaseworkView

CAP = 1000


@dataclass(frozen=True)
class Lag:
    """One follower of one log: its position, the log's head, and the events it has yet to do."""

    follower: str
    source: str
    position: int
    head: int
    behind: int  # followed events after the position; CAP means "CAP or more"


def backlog(
    source: Application[Any], topics: Sequence[str], position: int, *, cap: int = CAP
) -> int:
    """How many events of `topics` the source's log holds after `position` (at most `cap`)."""
    return len(
        source.recorder.select_notifications(
            start=position, limit=cap, topics=topics, inclusive_of_start=False
        )
    )


def lags(
    registry: Registry, allocator: Allocator, view_positions: dict[str, dict[str, int]]
) -> list[Lag]:
    """The allocator and every read model, against the logs they follow."""
    heads = {
        Registry.name: registry.recorder.max_notification_id() or 0,
        Allocator.name: allocator.recorder.max_notification_id() or 0,
    }
    followers: list[tuple[str, Application[Any], Sequence[str], int]] = [
        ("allocator", registry, Allocator.topics, allocator.position(Registry.name)),
        (
            CaseworkView.name,
            registry,
            CaseworkView.topics,
            view_positions.get(CaseworkView.name, {}).get(Registry.name, 0),
        ),
        (
            AllocationView.name,
            allocator,
            AllocationView.topics,
            view_positions.get(AllocationView.name, {}).get(Allocator.name, 0),
        ),
    ]
    return [
        Lag(name, source.name, position, heads[source.name], backlog(source, topics, position))
        for name, source, topics, position in followers
    ]
