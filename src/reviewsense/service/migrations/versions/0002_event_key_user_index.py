"""Reviews: unique event_key (exactly-once ingestion from Redis Streams) and a per-viewer index.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite cannot ALTER TABLE ... ADD CONSTRAINT; Alembic copies the table there.
    with op.batch_alter_table("reviews") as batch:
        batch.add_column(sa.Column("event_key", sa.String(250), nullable=True))
        batch.create_unique_constraint("uq_reviews_event_key", ["event_key"])
    op.create_index("ix_reviews_user_created", "reviews", ["user_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_reviews_user_created", table_name="reviews")
    with op.batch_alter_table("reviews") as batch:
        batch.drop_constraint("uq_reviews_event_key", type_="unique")
        batch.drop_column("event_key")
