"""Fakes for Casework tests: a staff member as a view, and the one Staff query Casework makes."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

from domain.errors import StaffNotFound
from domain.values import StaffRole, StaffView


def staff_member(role: StaffRole = StaffRole.OFFICER, *, disabled: bool = False) -> StaffView:
    return StaffView(
        id=uuid4(),
        email=f"{role.value}@example.org",
        name=role.value.title(),
        role=role,
        enrolled=True,
        disabled=disabled,
        locked_until=None,
        active_sessions=1,
        added_at=datetime(2026, 1, 1, tzinfo=UTC),
        version=3,
    )


class Roster:
    """A fake of the Staff application's one query Casework uses."""

    def __init__(self, *members: StaffView) -> None:
        self.members = {m.id: m for m in members}

    def get(self, staff_id: UUID) -> StaffView:
        if staff_id not in self.members:
            raise StaffNotFound(str(staff_id))
        return self.members[staff_id]
