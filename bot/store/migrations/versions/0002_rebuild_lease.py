"""rebuild driver lease and failure-reply flag

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rebuilds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("driver", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("rebuild_items", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("notified", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("rebuild_items", schema=None) as batch_op:
        batch_op.drop_column("notified")
    with op.batch_alter_table("rebuilds", schema=None) as batch_op:
        batch_op.drop_column("heartbeat_at")
        batch_op.drop_column("driver")
