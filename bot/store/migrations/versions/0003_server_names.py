"""the Connect server of each rebuild and audit record

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("rebuilds", "audit_log"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("server", sa.String(length=64), nullable=True))


def downgrade() -> None:
    for table in ("audit_log", "rebuilds"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("server")
