"""rebuild item runtimes: the runtime caches each item needs, one key a line

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-17
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rebuild_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("runtimes", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rebuild_items", schema=None) as batch_op:
        batch_op.drop_column("runtimes")
