"""Waitlist departures: positions on a waitlist without counting everyone waiting ahead.

The allocation view is rebuilt from the log: its rows and position are cleared, so the worker
replays the Allocator's log from the start and fills the new table as it goes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "waitlist_departures",
        sa.Column("intake_id", sa.String(32), primary_key=True),
        sa.Column("pool", sa.String(40), primary_key=True),
        sa.Column("rank", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.String(32), nullable=False),
    )
    op.execute("DELETE FROM allocation_status")
    op.execute("DELETE FROM ledgers")
    op.execute("DELETE FROM view_tracking WHERE view_name = 'allocation_view'")


def downgrade() -> None:
    op.drop_table("waitlist_departures")
