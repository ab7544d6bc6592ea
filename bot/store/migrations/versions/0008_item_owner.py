"""rebuild item owner: the Connect user owning each item, told by DM when its build fails

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rebuild_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner_guid", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rebuild_items", schema=None) as batch_op:
        batch_op.drop_column("owner_guid")
