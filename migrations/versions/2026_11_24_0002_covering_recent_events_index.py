"""covering index for a user's recent events

The request path reads a user's newest events (item and rating) by a backward range scan
of (user_id, occurred_at, id); carrying item_id and rating in the index lets both
PostgreSQL (index-only scan) and SQLite (covering index) answer without touching the
table.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = ["user_id", "occurred_at", "id"]
NEW = [*OLD, "item_id", "rating"]


def upgrade() -> None:
    op.create_index(op.f("ix_interactions_" + "_".join(NEW)), "interactions", NEW)
    op.drop_index(op.f("ix_interactions_" + "_".join(OLD)), table_name="interactions")


def downgrade() -> None:
    op.create_index(op.f("ix_interactions_" + "_".join(OLD)), "interactions", OLD)
    op.drop_index(op.f("ix_interactions_" + "_".join(NEW)), table_name="interactions")
