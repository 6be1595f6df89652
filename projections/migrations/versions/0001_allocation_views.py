"""Read models of allocation: each case's place, offer or waitlist rank, and each ledger.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "view_tracking",
        sa.Column("view_name", sa.String(64), primary_key=True),
        sa.Column("application_name", sa.String(64), primary_key=True),
        sa.Column("notification_id", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "ledgers",
        sa.Column("ledger_id", sa.String(32), primary_key=True),
        sa.Column("intake_id", sa.String(32), nullable=False, unique=True),
        sa.Column("policy", sa.String(16), nullable=False),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("closed", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("drawn_at", sa.DateTime(timezone=True)),
        sa.Column("draw", sa.JSON),
    )
    op.create_table(
        "allocation_status",
        sa.Column("case_id", sa.String(32), primary_key=True),
        sa.Column("intake_id", sa.String(32), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("pool", sa.String(40)),
        sa.Column("slot", sa.Integer),
        sa.Column("rank", sa.Integer),
        sa.Column("deadline", sa.DateTime(timezone=True)),
        sa.Column("reason", sa.String(200)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "allocation_status_queue", "allocation_status", ["intake_id", "state", "pool", "rank"]
    )
    op.create_index("allocation_status_deadline", "allocation_status", ["state", "deadline"])


def downgrade() -> None:
    op.drop_table("allocation_status")
    op.drop_table("ledgers")
    op.drop_table("view_tracking")
