"""client event ids on interactions

Events posted to /events may carry the client's own id; a unique index on it makes a
retried post store its events once (rows without an id, such as loaded files, are not
constrained: NULLs are distinct).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("interactions") as batch:
        batch.add_column(sa.Column("event_id", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_interactions_event_id"), "interactions", ["event_id"], unique=True)


def downgrade() -> None:
    op.drop_index(op.f("ix_interactions_event_id"), table_name="interactions")
    with op.batch_alter_table("interactions") as batch:
        batch.drop_column("event_id")
