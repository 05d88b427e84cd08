"""The database schema (SQLAlchemy Core). The app, the training job and Alembic all import it.

Ids are strings everywhere: catalogs outside MovieLens use SKUs and UUIDs.
"""

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

ID_LENGTH = 64

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = Table(
    "users",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("age", Integer, nullable=True),
    Column("gender", String(16), nullable=True),
    Column("occupation", String(64), nullable=True),
    Column("zip_code", String(16), nullable=True),
)

items = Table(
    "items",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("title", Text, nullable=False),
    # Pipe-separated genre names, e.g. "Animation|Children's|Comedy".
    Column("genres", Text, nullable=False, server_default=""),
    Column("release_date", String(32), nullable=True),
    Column("url", Text, nullable=True),
)

interactions = Table(
    "interactions",
    metadata,
    # Also the tie-break for events in the same second: insertion order is time order.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String(ID_LENGTH), ForeignKey("users.id"), nullable=False),
    Column("item_id", String(ID_LENGTH), ForeignKey("items.id"), nullable=False),
    Column("rating", Float, nullable=True),
    Column("event_type", String(32), nullable=False, server_default="rating"),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("user_id", "item_id", "event_type", "occurred_at"),
    # Serves "this user's most recent N" (item and rating) as one index-only range scan.
    Index(None, "user_id", "occurred_at", "id", "item_id", "rating"),
)
