"""rebuild items: the verification after a build (does the built item start?)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rebuild_items") as batch:
        batch.add_column(sa.Column("verified", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("verify_error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rebuild_items") as batch:
        batch.drop_column("verify_error")
        batch.drop_column("verified")
