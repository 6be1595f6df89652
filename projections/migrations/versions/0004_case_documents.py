"""The casework view's documents: each case's documents with their history, and every digest any
event has referenced (the blob collector's source of truth); status and metric columns wide enough
for `application_submitted`.

The casework view is rebuilt from the log: its rows and position are cleared, so the worker
replays the Registry's log from the start and fills the new tables from the documents' events.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _clear_casework_view() -> None:
    op.execute("DELETE FROM case_timeline")
    op.execute("DELETE FROM case_minutes")
    op.execute("DELETE FROM case_counts")
    op.execute("DELETE FROM cases")
    op.execute("DELETE FROM view_tracking WHERE view_name = 'casework_view'")


def upgrade() -> None:
    # Batch mode: PostgreSQL alters the columns in place, SQLite copies the table (it has no
    # ALTER COLUMN); the indexes come along either way.
    with op.batch_alter_table("cases") as batch:
        batch.alter_column("status", type_=sa.String(32), existing_nullable=False)
    with op.batch_alter_table("case_counts") as batch:
        batch.alter_column("metric", type_=sa.String(32), existing_nullable=False)
    op.create_table(
        "case_documents",
        sa.Column("case_id", sa.String(32), primary_key=True),
        sa.Column("document_id", sa.String(16), primary_key=True),
        sa.Column("item", sa.String(40), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("scan", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("replaces", sa.String(16)),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    op.create_index("case_documents_scan", "case_documents", ["scan", "state"])
    op.create_table(
        "document_digests",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("first_position", sa.BigInteger, nullable=False),
    )
    _clear_casework_view()


def downgrade() -> None:
    # The narrower columns cannot hold what this revision's view wrote: it is rebuilt again.
    _clear_casework_view()
    op.drop_table("document_digests")
    op.drop_index("case_documents_scan", table_name="case_documents")
    op.drop_table("case_documents")
    with op.batch_alter_table("case_counts") as batch:
        batch.alter_column("metric", type_=sa.String(16), existing_nullable=False)
    with op.batch_alter_table("cases") as batch:
        batch.alter_column("status", type_=sa.String(16), existing_nullable=False)
