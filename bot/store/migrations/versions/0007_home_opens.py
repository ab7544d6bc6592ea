"""home opens: who opened the bot's App Home, when, and what was last published there

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "home_opens",
        sa.Column("user_id", sa.String(length=64), primary_key=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_hash", sa.String(length=128), nullable=True),
        sa.Column("section", sa.String(length=128), nullable=True),
    )
    op.create_index("ix_home_opens_opened_at", "home_opens", ["opened_at"])


def downgrade() -> None:
    op.drop_index("ix_home_opens_opened_at", table_name="home_opens")
    op.drop_table("home_opens")
