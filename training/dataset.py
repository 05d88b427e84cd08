"""Read the database into compact arrays, split it, and build model inputs from it.

Whatever the catalog, the offline job holds it as arrays, not Python objects per event
(ten million interactions are three arrays of ten million numbers): ids and attribute
columns per user and per item, and every interaction as (item row, rating) grouped by
user, each user's in time order. Each user's interactions are ordered by (occurred_at,
id), the same order the app uses for "most recent first", so a training example's history
is built exactly as a live request's history is. Model inputs for any set of positions are
built on demand (`query_columns`, `example_columns`), a batch at a time.
"""

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.catalog import CatalogConfig, FieldSpec, Kind, parse_catalog_config
from app.db.tables import catalog as catalog_table
from app.db.tables import interactions, items, users
from models import features as F

READ_CHUNK = 200_000  # events a chunk (the fingerprint hashes them chunk by chunk)
ROWS_CHUNK = 100_000  # users or items a chunk


class NoCatalogError(LookupError):
    """The database holds no catalog: nothing has been loaded into it yet."""


@dataclass
class Catalog:
    config: CatalogConfig
    user_ids: np.ndarray  # [users] str, natural order ("2" before "10")
    users: dict[str, np.ndarray]  # field -> [users] stored values (numeric: float64, NaN)
    item_ids: np.ndarray  # [items] str, sorted: the index order of every export
    items: dict[str, np.ndarray]  # field -> [items]
    event_items: np.ndarray  # int32 [events] item row, grouped by user, oldest first
    event_ratings: np.ndarray  # float32 [events], NaN where the event has no rating
    starts: np.ndarray  # int64 [users + 1]: user u's events are starts[u]:starts[u + 1]
    fingerprint: str

    @property
    def event_users(self) -> np.ndarray:
        """int32 [events]: the user row of each event."""
        return np.repeat(np.arange(len(self.user_ids), dtype=np.int32), np.diff(self.starts))

    @property
    def events(self) -> int:
        return len(self.event_items)

    @classmethod
    def from_records(
        cls,
        config: CatalogConfig,
        users: dict[str, dict],
        items: dict[str, dict],
        sequences: dict[str, list[str]],
        ratings: dict[str, list[float | None]] | None = None,
    ) -> "Catalog":
        """A catalog from Python records (tests, small tools): attributes by user and item
        id, and each user's item ids oldest first (with their ratings, None for none)."""
        user_ids = sorted(users, key=_natural)
        item_ids = sorted(items)
        item_row = {item: r for r, item in enumerate(item_ids)}
        events = [sequences.get(u, []) for u in user_ids]
        given = ratings or {}
        stars = [given.get(u) or [None] * len(e) for u, e in zip(user_ids, events, strict=True)]
        flat = [item_row[i] for e in events for i in e]
        return cls(
            config=config,
            user_ids=_strings(user_ids),
            users=_attributes(config.user_fields, [users[u] for u in user_ids]),
            item_ids=_strings(item_ids),
            items=_attributes(config.item_fields, [items[i] for i in item_ids]),
            event_items=np.array(flat, np.int32),
            event_ratings=np.array(
                [np.nan if r is None else r for s in stars for r in s], np.float32
            ),
            starts=np.concatenate([[0], np.cumsum([len(e) for e in events])]).astype(np.int64),
            fingerprint="records",
        )


async def read_catalog(engine: AsyncEngine, max_users: int | None = None) -> Catalog:
    """The whole catalog as arrays; `max_users` keeps the first users in natural order."""
    async with engine.connect() as conn:
        config_row = (await conn.execute(select(catalog_table.c.config))).first()
        if config_row is None:
            raise NoCatalogError("the database holds no catalog")
        config = parse_catalog_config(config_row[0], "the database's catalog")
        user_rows = await _all_rows(conn, select(users.c.id, users.c.attributes))
        item_rows = await _all_rows(conn, select(items.c.id, items.c.attributes))
        user_rows.sort(key=lambda row: _natural(row[0]))
        item_rows.sort(key=lambda row: row[0])
        user_rows = user_rows[:max_users]
        user_row = {row[0]: r for r, row in enumerate(user_rows)}
        item_row = {row[0]: r for r, row in enumerate(item_rows)}
        digest = hashlib.sha256(repr(config.model_dump(mode="json")).encode())
        columns = await _read_events(conn, user_row, item_row, digest)
    for row in (*user_rows, *item_rows):
        digest.update(repr((row[0], sorted(row[1].items()))).encode())
    return Catalog(
        config=config,
        user_ids=_strings([row[0] for row in user_rows]),
        users=_attributes(config.user_fields, [row[1] for row in user_rows]),
        item_ids=_strings([row[0] for row in item_rows]),
        items=_attributes(config.item_fields, [row[1] for row in item_rows]),
        fingerprint=digest.hexdigest(),
        **columns,
    )


async def _all_rows(conn: Any, stmt: Any) -> list:
    """Every row of `stmt`, fetched in chunks of ROWS_CHUNK: each chunk is a statement of
    its own, so the engine's per-statement timeout bounds a chunk, not the whole table
    (a million items with their attributes took 3 s in one fetch on a 2-core machine,
    more than the default 5 s through the engine)."""
    result = await conn.stream(stmt.execution_options(yield_per=ROWS_CHUNK))
    return [row async for chunk in result.partitions() for row in chunk]


async def _read_events(conn: Any, user_row: dict, item_row: dict, digest: Any) -> dict:
    """Every event of the kept users as (user row, item row, rating), grouped by user in
    time order; streamed in chunks, so no Python object per event outlives its chunk."""
    stmt = (
        select(
            interactions.c.user_id,
            interactions.c.item_id,
            interactions.c.rating,
            interactions.c.occurred_at,
        )
        .order_by(interactions.c.user_id, interactions.c.occurred_at, interactions.c.id)
        .execution_options(yield_per=READ_CHUNK)
    )
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    result = await conn.stream(stmt)
    async for chunk in result.partitions():
        who = np.fromiter((user_row.get(r[0], -1) for r in chunk), np.int32, len(chunk))
        what = np.fromiter((item_row[r[1]] for r in chunk), np.int32, len(chunk))
        stars = np.array([np.nan if r[2] is None else r[2] for r in chunk], np.float32)
        when = np.array([r[3].timestamp() for r in chunk], np.float64)
        for array in (who, what, stars, when):
            digest.update(array.tobytes())
        kept = who >= 0
        parts.append((who[kept], what[kept], stars[kept]))
    who, what, stars = (np.concatenate([p[i] for p in parts]) if parts else None for i in range(3))
    if who is None:
        who, what, stars = np.empty(0, np.int32), np.empty(0, np.int32), np.empty(0, np.float32)
    # The database orders users as strings; rows are in natural order. A stable sort keeps
    # each user's time order.
    order = np.argsort(who, kind="stable")
    counts = np.bincount(who, minlength=len(user_row))
    return {
        "event_items": what[order],
        "event_ratings": stars[order],
        "starts": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
    }


def _natural(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (1 << 62, value)


def _strings(values: list[str]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _attributes(fields: list[FieldSpec], rows: list[dict]) -> dict[str, np.ndarray]:
    columns = {}
    for spec in fields:
        values = [row.get(spec.name) for row in rows]
        if spec.kind == Kind.numeric:
            columns[spec.name] = np.array(
                [np.nan if v is None else float(v) for v in values], np.float64
            )
        else:
            columns[spec.name] = _strings(values)
    return columns


Holdout = Literal["test", "validation"]


@dataclass
class Split:
    """Leave-last-out: train on all but each user's newest event, test on that event.

    With holdout="validation" each user's newest event is dropped first, so the held-out
    event is the one before it: tuning sees validation items, never test items. Positions
    index the catalog's event arrays.
    """

    catalog: Catalog
    contract: F.Contract
    train_positions: np.ndarray  # int64 [training examples]
    test_positions: np.ndarray  # int64 [evaluated users]: each one's held-out event
    test_user_rows: np.ndarray  # int64 [evaluated users]
    item_counts: np.ndarray  # int64 [items]: training examples per item

    @property
    def test_users(self) -> list[str]:
        return self.catalog.user_ids[self.test_user_rows].tolist()

    @property
    def test_item_rows(self) -> np.ndarray:
        return self.catalog.event_items[self.test_positions].astype(np.int64)

    @property
    def test_items(self) -> list[str]:
        return self.catalog.item_ids[self.test_item_rows].tolist()

    @property
    def test_ratings(self) -> list[float | None]:
        stars = self.catalog.event_ratings[self.test_positions]
        return [None if np.isnan(s) else float(s) for s in stars.tolist()]

    def seen_rows(self, i: int) -> np.ndarray:
        """Item rows evaluated user i had before the held-out event, oldest first."""
        user = self.test_user_rows[i]
        return self.catalog.event_items[self.catalog.starts[user] : self.test_positions[i]]

    def train_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(user row, item row, rating) of every training example."""
        users = self.catalog.event_users[self.train_positions]
        catalog = self.catalog
        items, stars = catalog.event_items, catalog.event_ratings
        return users, items[self.train_positions], stars[self.train_positions]

    @property
    def train_examples(self) -> int:
        return len(self.train_positions)


def leave_last_out(catalog: Catalog, contract: F.Contract, holdout: Holdout = "test") -> Split:
    counts = np.diff(catalog.starts)
    kept = np.maximum(counts - (1 if holdout == "validation" else 0), 0)
    tested = kept >= 2  # a user with one event trains on it; nobody is tested on nothing
    trained = np.where(tested, kept - 1, kept)
    users = np.arange(len(counts))
    starts = catalog.starts[:-1]
    train = ranges(starts, trained)
    test_users = users[tested]
    test = starts[tested] + kept[tested] - 1
    item_counts = np.bincount(catalog.event_items[train], minlength=len(catalog.item_ids))
    return Split(catalog, contract, train, test, test_users, item_counts.astype(np.int64))


def ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated arange(start, start + length) for each pair, without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, np.int64)
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return np.arange(total, dtype=np.int64) + offsets


def _histories(catalog: Catalog, positions: np.ndarray, length: int) -> dict[str, np.ndarray]:
    """The history features at each position: the `length` events before it of the same
    user, most recent first, padded (items with HISTORY_PAD, ratings with NaN)."""
    users = np.searchsorted(catalog.starts, positions, side="right") - 1
    back = positions[:, None] - 1 - np.arange(length)[None, :]
    valid = back >= catalog.starts[users][:, None]
    safe = np.where(valid, back, 0)
    ids = np.where(valid, catalog.item_ids[catalog.event_items[safe]], F.HISTORY_PAD)
    stars = np.where(valid, catalog.event_ratings[safe], np.nan).astype(np.float32)
    return {F.HISTORY: ids.astype(object), F.HISTORY_RATINGS: stars}


def user_columns(catalog: Catalog, rows: np.ndarray, contract: F.Contract) -> dict:
    columns = {F.USER_ID: catalog.user_ids[rows]}
    for feature in contract.user_features:
        columns[feature.name] = model_values(catalog.users[feature.name][rows], feature.kind)
    return columns


def item_columns(catalog: Catalog, rows: np.ndarray, contract: F.Contract) -> dict:
    columns = {F.ITEM_ID: catalog.item_ids[rows]}
    for feature in contract.item_features:
        columns[feature.name] = model_values(catalog.items[feature.name][rows], feature.kind)
    return columns


def model_values(stored: np.ndarray, kind: Kind) -> np.ndarray:
    """Stored attribute values as the model takes them: float32 numbers (NaN missing) or
    strings ("" missing)."""
    if kind == Kind.numeric:
        return stored.astype(np.float32)
    out = np.empty(len(stored), dtype=object)
    out[:] = ["" if v is None else v for v in stored.tolist()]
    return out


def query_columns(split: Split, positions: np.ndarray, users: np.ndarray) -> dict:
    """Query-side inputs at `positions` (events of the rows in `users`)."""
    history = _histories(split.catalog, positions, split.contract.history_length)
    return {**user_columns(split.catalog, users, split.contract), **history}


def example_columns(split: Split, positions: np.ndarray) -> dict:
    """Training inputs for the events at `positions`: query side, candidate side, the
    example's rating and its item's sampling probability."""
    catalog, contract = split.catalog, split.contract
    users = np.searchsorted(catalog.starts, positions, side="right") - 1
    item_rows = catalog.event_items[positions]
    probability = split.item_counts[item_rows] / max(split.train_examples, 1)
    return {
        **query_columns(split, positions, users),
        **item_columns(catalog, item_rows, contract),
        F.RATING: catalog.event_ratings[positions],
        F.CANDIDATE_PROBABILITY: probability.astype(np.float32),
    }
