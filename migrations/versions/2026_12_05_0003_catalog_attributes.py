"""the catalog contract: a catalog table and JSON attributes for users and items

Also: interaction ids become 64-bit (PostgreSQL), for catalogs of tens of millions of
events.

Users and items kept MovieLens' columns (age, gender, ...; title, genres, ...); now what
they carry is declared by a catalog config, stored in `catalog`, and each row's values
are one JSON object (`attributes`). Rows already loaded (MovieLens 100K, the only catalog
there was) move into `attributes` under the same names, and the catalog row is the
shipped movielens-100k config, so a database loaded before this serves and trains as it
did. Downgrading moves MovieLens' fields back into their columns.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ATTRIBUTES = sa.JSON().with_variant(JSONB(), "postgresql")
USER_COLUMNS = {
    "age": sa.Integer(),
    "gender": sa.String(16),
    "occupation": sa.String(64),
    "zip_code": sa.String(16),
}
ITEM_COLUMNS = {
    "title": sa.Text(),
    "genres": sa.Text(),
    "release_date": sa.String(32),
    "url": sa.Text(),
}
MOVIELENS = Path(__file__).resolve().parents[2] / "training" / "catalogs" / "movielens-100k.toml"


def upgrade() -> None:
    catalog = op.create_table(
        "catalog",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("config", ATTRIBUTES, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_catalog")),
    )
    for table in ("users", "items"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("attributes", ATTRIBUTES, server_default="{}", nullable=False)
            )
    _to_json("users", USER_COLUMNS)
    _to_json("items", ITEM_COLUMNS)
    with op.batch_alter_table("users") as batch:
        for name in USER_COLUMNS:
            batch.drop_column(name)
    with op.batch_alter_table("items") as batch:
        for name in ITEM_COLUMNS:
            batch.drop_column(name)
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":  # SQLite's rowid is 64-bit already
        op.alter_column("interactions", "id", type_=sa.BigInteger())
        # A serial's sequence keeps its own type (and its 2^31 limit) until told.
        op.execute("ALTER SEQUENCE interactions_id_seq AS bigint")
    if bind.execute(sa.text("SELECT count(*) FROM items")).scalar_one():
        op.bulk_insert(catalog, [_movielens_row()])


def _to_json(table: str, columns: dict) -> None:
    pairs = ", ".join(f"'{name}', {name}" for name in columns)
    build = "jsonb_build_object" if op.get_bind().dialect.name == "postgresql" else "json_object"
    op.execute(f"UPDATE {table} SET attributes = {build}({pairs})")


def _movielens_row() -> dict:
    from app.catalog import read_catalog_config

    config = read_catalog_config(MOVIELENS).model_dump(mode="json")
    return {"name": config["name"], "config": config, "updated_at": datetime.now(UTC)}


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER SEQUENCE interactions_id_seq AS integer")
        op.alter_column("interactions", "id", type_=sa.Integer())
    with op.batch_alter_table("users") as batch:
        for name, kind in USER_COLUMNS.items():
            batch.add_column(sa.Column(name, kind, nullable=True))
    with op.batch_alter_table("items") as batch:
        for name, kind in ITEM_COLUMNS.items():
            default = "" if name in ("title", "genres") else None
            batch.add_column(
                sa.Column(name, kind, nullable=default is None, server_default=default)
            )
    _from_json("users", USER_COLUMNS)
    _from_json("items", ITEM_COLUMNS)
    for table in ("users", "items"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("attributes")
    op.drop_table("catalog")


def _from_json(table: str, columns: dict) -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    sets = []
    for name, kind in columns.items():
        value = f"attributes->>'{name}'" if postgres else f"json_extract(attributes, '$.{name}')"
        if isinstance(kind, sa.Integer):
            value = f"CAST({value} AS INTEGER)"
        if name in ("title", "genres"):  # NOT NULL before this revision
            value = f"COALESCE({value}, '')"
        sets.append(f"{name} = {value}")
    op.execute(f"UPDATE {table} SET {', '.join(sets)}")
