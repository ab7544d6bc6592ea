"""seen signatures: Slack request signatures accepted by any replica, for replay checks

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seen_signatures",
        sa.Column("signature", sa.String(length=80), primary_key=True),
        sa.Column("expires", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_seen_signatures_expires", "seen_signatures", ["expires"])


def downgrade() -> None:
    op.drop_index("ix_seen_signatures_expires", table_name="seen_signatures")
    op.drop_table("seen_signatures")
