"""rebuild items: one row per (rebuild_id, guid); when a scheduled start was claimed

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Duplicates a concurrent re-evaluation may have left: keep each item's first row.
    op.execute(
        sa.text(
            "DELETE FROM rebuild_items WHERE id NOT IN"
            " (SELECT keep FROM (SELECT MIN(id) AS keep FROM rebuild_items"
            " GROUP BY rebuild_id, guid) AS firsts)"
        )
    )
    op.create_index(
        "uq_rebuild_items_rebuild_guid", "rebuild_items", ["rebuild_id", "guid"], unique=True
    )
    with op.batch_alter_table("rebuilds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rebuilds", schema=None) as batch_op:
        batch_op.drop_column("claimed_at")
    op.drop_index("uq_rebuild_items_rebuild_guid", table_name="rebuild_items")
