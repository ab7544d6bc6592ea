"""rebuild visitors: the visits each item's build makes wait, and the plan's usage

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rebuild_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("visitors", sa.Integer(), nullable=True))
    with op.batch_alter_table("rebuilds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("usage", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rebuilds", schema=None) as batch_op:
        batch_op.drop_column("usage")
    with op.batch_alter_table("rebuild_items", schema=None) as batch_op:
        batch_op.drop_column("visitors")
