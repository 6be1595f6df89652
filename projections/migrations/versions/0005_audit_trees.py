"""The Merkle tree of each log: its leaves in notification order, its compact state, and the
checkpoints it asked for and has not yet seen signed.

Nothing is cleared: the tree follower starts from the first event of each log.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_leaves",
        sa.Column("log", sa.String(32), primary_key=True),
        sa.Column("leaf_index", sa.BigInteger, primary_key=True),
        sa.Column("notification_id", sa.BigInteger, nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_table(
        "audit_trees",
        sa.Column("log", sa.String(32), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("notification_id", sa.BigInteger, nullable=False),
        sa.Column("frontier", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "audit_due",
        sa.Column("log", sa.String(32), primary_key=True),
        sa.Column("size", sa.BigInteger, primary_key=True),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("reasons", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_due")
    op.drop_table("audit_trees")
    op.drop_table("audit_leaves")
