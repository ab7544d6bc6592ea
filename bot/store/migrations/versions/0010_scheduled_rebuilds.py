"""scheduled rebuilds: when a plan starts, who scheduled it, what it selects, who claimed it

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-18
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rebuilds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("scheduled_by", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("criteria", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("reminded", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("claimed_by", sa.String(128), nullable=True))
        batch_op.create_index("ix_rebuilds_state_scheduled_for", ["state", "scheduled_for"])


def downgrade() -> None:
    with op.batch_alter_table("rebuilds", schema=None) as batch_op:
        batch_op.drop_index("ix_rebuilds_state_scheduled_for")
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("reminded")
        batch_op.drop_column("criteria")
        batch_op.drop_column("scheduled_by")
        batch_op.drop_column("scheduled_for")
