"""users, items and interactions

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("genres", sa.Text(), server_default="", nullable=False),
        sa.Column("release_date", sa.String(length=32), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_items")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("age", sa.Integer(), nullable=True),
        sa.Column("gender", sa.String(length=16), nullable=True),
        sa.Column("occupation", sa.String(length=64), nullable=True),
        sa.Column("zip_code", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )
    op.create_table(
        "interactions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.Column("rating", sa.Float(), nullable=True),
        sa.Column("event_type", sa.String(length=32), server_default="rating", nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_interactions_item_id_items")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_interactions_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interactions")),
        sa.UniqueConstraint(
            "user_id",
            "item_id",
            "event_type",
            "occurred_at",
            name=op.f("uq_interactions_user_id_item_id_event_type_occurred_at"),
        ),
    )
    op.create_index(
        op.f("ix_interactions_user_id_occurred_at_id"),
        "interactions",
        ["user_id", "occurred_at", "id"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_interactions_user_id_occurred_at_id"), table_name="interactions")
    op.drop_table("interactions")
    op.drop_table("users")
    op.drop_table("items")
