"""Officers' read models: the casework view (cases, counters, minutes, timeline) and the allocation
view's counters, minutes, timeline and the ledgers' pools.

The allocation view is rebuilt from the log: its rows and position are cleared, so the worker
replays the Allocator's log from the start and fills the new tables consistently with the old.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CASES_INDEXES = (
    ("cases_queued", ("queued_at", "case_id")),
    ("cases_updated", ("updated_at", "case_id")),
    ("cases_reference", ("reference", "case_id")),
    ("cases_status_queued", ("status", "queued_at", "case_id")),
    ("cases_intake_queued", ("intake_id", "queued_at", "case_id")),
    ("cases_intake_status_queued", ("intake_id", "status", "queued_at", "case_id")),
    ("cases_intake_status_updated", ("intake_id", "status", "updated_at", "case_id")),
    ("cases_intake_status_reference", ("intake_id", "status", "reference", "case_id")),
    ("cases_assigned_queued", ("assigned_to", "queued_at", "case_id")),
)


def _timeline(name: str) -> None:
    op.create_table(
        name,
        sa.Column("case_id", sa.String(32), primary_key=True),
        sa.Column("position", sa.BigInteger, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("what", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
    )


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("case_id", sa.String(32), primary_key=True),
        sa.Column("reference", sa.String(20), nullable=False),
        sa.Column("intake_id", sa.String(32), nullable=False),
        sa.Column("pool", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("assigned_to", sa.String(32)),
        sa.Column("open_request", sa.Boolean, nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True)),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    for name, columns in CASES_INDEXES:
        op.create_index(name, "cases", list(columns))
    op.create_table(
        "case_counts",
        sa.Column("intake_id", sa.String(32), primary_key=True),
        sa.Column("pool", sa.String(40), primary_key=True),
        sa.Column("metric", sa.String(16), primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
    )
    op.create_table(
        "case_minutes",
        sa.Column("intake_id", sa.String(32), primary_key=True),
        sa.Column("minute", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("registered", sa.Integer, nullable=False),
        sa.Column("submitted", sa.Integer, nullable=False),
    )
    _timeline("case_timeline")

    op.create_table(
        "allocation_counts",
        sa.Column("intake_id", sa.String(32), primary_key=True),
        sa.Column("pool", sa.String(40), primary_key=True),
        sa.Column("state", sa.String(32), primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
    )
    op.create_table(
        "allocation_minutes",
        sa.Column("intake_id", sa.String(32), primary_key=True),
        sa.Column("minute", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("granted", sa.Integer, nullable=False),
    )
    _timeline("allocation_timeline")
    op.add_column("ledgers", sa.Column("pools", sa.JSON))

    op.execute("DELETE FROM waitlist_departures")
    op.execute("DELETE FROM allocation_status")
    op.execute("DELETE FROM ledgers")
    op.execute("DELETE FROM view_tracking WHERE view_name = 'allocation_view'")


def downgrade() -> None:
    op.drop_column("ledgers", "pools")
    for name in (
        "allocation_timeline",
        "allocation_minutes",
        "allocation_counts",
        "case_timeline",
        "case_minutes",
        "case_counts",
        "cases",
    ):
        op.drop_table(name)
