"""The database schema (SQLAlchemy Core). The app, the training job and Alembic all import it.

Ids are strings everywhere: catalogs outside MovieLens use SKUs and UUIDs. What a user or
an item is beyond its id is declared by the catalog config (app/catalog.py), stored in
`catalog`, and kept per row as one JSON object of attributes: a new catalog needs no
migration, and the request path reads a user's attributes as one column.
"""

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

ID_LENGTH = 64

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# JSONB on PostgreSQL (binary, compact); JSON text on SQLite.
Attributes = JSON().with_variant(JSONB(), "postgresql")

# The loaded catalog's config (app.catalog.CatalogConfig as JSON): one row per database.
catalog = Table(
    "catalog",
    metadata,
    Column("name", String(ID_LENGTH), primary_key=True),
    Column("config", Attributes, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    # The catalog's user fields by name ({} for a catalog without a user file).
    Column("attributes", Attributes, nullable=False, server_default="{}"),
)

items = Table(
    "items",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("attributes", Attributes, nullable=False, server_default="{}"),
)

interactions = Table(
    "interactions",
    metadata,
    # Also the tie-break for events in the same second: insertion order is time order.
    # 64-bit: catalogs reach tens of millions of events, and a sequence also counts rows
    # a load tried and skipped. (SQLite's rowid is 64-bit already, and must be INTEGER.)
    Column(
        "id",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("user_id", String(ID_LENGTH), ForeignKey("users.id"), nullable=False),
    Column("item_id", String(ID_LENGTH), ForeignKey("items.id"), nullable=False),
    Column("rating", Float, nullable=True),
    Column("event_type", String(32), nullable=False, server_default="rating"),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    # The client's id of an event posted to /events: a retried post stores it once.
    Column("event_id", String(ID_LENGTH), nullable=True),
    UniqueConstraint("user_id", "item_id", "event_type", "occurred_at"),
    Index(None, "event_id", unique=True),
    # Serves "this user's most recent N" (item and rating) as one index-only range scan.
    Index(None, "user_id", "occurred_at", "id", "item_id", "rating"),
)
