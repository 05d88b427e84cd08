"""Read the database into training examples and the temporal hold-out.

Each user's interactions are ordered by (occurred_at, id), the same order the app uses
for "most recent first", so a training example's history is built exactly as a live
request's history is.
"""

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.tables import interactions, items, users
from models import features as F


@dataclass
class Catalog:
    users: dict[str, dict]  # id -> attributes
    items: dict[str, dict]  # id -> catalog fields
    sequences: dict[str, list[str]]  # user id -> item ids, oldest first
    fingerprint: str
    ratings: dict[str, list[float | None]] = field(default_factory=dict)  # parallel to sequences


async def read_catalog(engine: AsyncEngine, max_users: int | None = None) -> Catalog:
    digest = hashlib.sha256()
    async with engine.connect() as conn:
        user_rows = (await conn.execute(select(users).order_by(users.c.id))).mappings().all()
        item_rows = (await conn.execute(select(items).order_by(items.c.id))).mappings().all()
        events = await conn.stream(
            select(
                interactions.c.user_id,
                interactions.c.item_id,
                interactions.c.occurred_at,
                interactions.c.rating,
            )
            .order_by(interactions.c.user_id, interactions.c.occurred_at, interactions.c.id)
            .execution_options(yield_per=10_000)
        )
        sequences: dict[str, list[str]] = defaultdict(list)
        ratings: dict[str, list[float | None]] = defaultdict(list)
        async for user_id, item_id, occurred_at, rating in events:
            sequences[user_id].append(item_id)
            ratings[user_id].append(rating)
            digest.update(f"{user_id}\t{item_id}\t{occurred_at.timestamp()}\n".encode())
    kept = sorted((r["id"] for r in user_rows), key=_natural)[:max_users]
    keep = set(kept)
    for row in (*user_rows, *item_rows):
        digest.update(repr(sorted(row.items())).encode())
    return Catalog(
        users={r["id"]: dict(r) for r in user_rows if r["id"] in keep},
        items={r["id"]: dict(r) for r in item_rows},
        sequences={u: s for u, s in sequences.items() if u in keep},
        fingerprint=digest.hexdigest(),
        ratings={u: r for u, r in ratings.items() if u in keep},
    )


def _natural(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (1 << 62, value)


Holdout = Literal["test", "validation"]


@dataclass
class Split:
    """Leave-last-out: train on all but each user's newest item, test on that item.

    With holdout="validation" each user's newest item is dropped first, so the held-out
    item is the one before it: tuning sees validation items, never test items.
    """

    train: dict[str, np.ndarray]  # feature name -> [examples, ...] raw values
    test_queries: dict[str, np.ndarray]  # one row per evaluated user
    test_items: list[str]  # the held-out item of each evaluated user
    test_seen: list[list[str]]  # the items each evaluated user saw in training
    train_item_counts: dict[str, int]
    test_users: list[str] = field(default_factory=list)
    test_ratings: list[float | None] = field(default_factory=list)  # of the held-out items


def history_before(sequence: list, position: int, length: int, pad=F.HISTORY_PAD) -> list:
    """The `length` entries before `position`, most recent first, padded with `pad`."""
    recent = sequence[max(0, position - length) : position][::-1]
    return recent + [pad] * (length - len(recent))


def _history(sequence: list[str], stars: list[float], position: int, length: int) -> dict:
    """The query's history features at `position`: item ids and their ratings (NaN: none)."""
    return {
        F.HISTORY: history_before(sequence, position, length),
        F.HISTORY_RATINGS: history_before(stars, position, length, pad=float("nan")),
    }


def user_features(user: dict) -> dict:
    return {
        F.USER_ID: user["id"],
        F.AGE: int(user["age"] or 0),
        F.GENDER: user["gender"] or "",
        F.OCCUPATION: user["occupation"] or "",
        F.ZIP_CODE: user["zip_code"] or "",
    }


def item_features(item: dict) -> dict:
    return {
        F.ITEM_ID: item["id"],
        F.GENRES: item["genres"] or "",
        F.RELEASE_DATE: item["release_date"] or "",
        F.TITLE: item["title"] or "",
    }


def item_metadata(item: dict) -> dict:
    """The catalog fields /recommendations?returnMetadata=true answers with."""
    return {
        "title": item["title"],
        "genres": [g for g in (item["genres"] or "").split(F.GENRE_SEPARATOR) if g],
        "release_date": item["release_date"],
        "url": item.get("url"),
    }


def leave_last_out(catalog: Catalog, history_length: int, holdout: Holdout = "test") -> Split:
    train_rows: list[dict] = []
    test_rows: list[dict] = []
    test_items, test_seen, test_users, test_ratings = [], [], [], []
    counts: dict[str, int] = defaultdict(int)
    drop = 1 if holdout == "validation" else 0
    for user_id, full in catalog.sequences.items():
        sequence = full[: len(full) - drop]
        raw = catalog.ratings.get(user_id) or [None] * len(full)
        stars = [_rating(value) for value in raw]
        profile = user_features(catalog.users[user_id])
        cut = len(sequence) - 1 if len(sequence) > 1 else len(sequence)
        for position in range(cut):
            item = catalog.items[sequence[position]]
            history = _history(sequence, stars, position, history_length)
            rating = {F.RATING: stars[position]}
            train_rows.append({**profile, **history, **item_features(item), **rating})
            counts[item["id"]] += 1
        if cut < len(sequence):
            test_rows.append({**profile, **_history(sequence, stars, cut, history_length)})
            test_items.append(sequence[cut])
            test_seen.append(sequence[:cut])
            test_users.append(user_id)
            test_ratings.append(raw[cut])
    train = _columns(train_rows)
    if train:
        frequency = np.array([counts[i] for i in train[F.ITEM_ID]], dtype=np.float32)
        train[F.CANDIDATE_PROBABILITY] = frequency / len(train_rows)
    return Split(
        train=train,
        test_queries=_columns(test_rows),
        test_items=test_items,
        test_seen=test_seen,
        train_item_counts=dict(counts),
        test_users=test_users,
        test_ratings=test_ratings,
    )


def _rating(value: float | None) -> float:
    # NaN marks "no explicit rating" (e.g. a click); the rating task gives it no weight.
    return float("nan") if value is None else float(value)


def _columns(rows: list[dict]) -> dict[str, np.ndarray]:
    if not rows:
        return {}
    columns = {key: np.array([row[key] for row in rows]) for key in rows[0]}
    for key in (F.RATING, F.HISTORY_RATINGS):
        if key in columns:
            columns[key] = columns[key].astype(np.float32)
    return columns


def item_columns(catalog: Catalog, item_ids: list[str]) -> dict[str, np.ndarray]:
    return _columns([item_features(catalog.items[i]) for i in item_ids])


def vocabularies(catalog: Catalog) -> F.Vocabularies:
    people = catalog.users.values()
    genres = {g for i in catalog.items.values() for g in (i["genres"] or "").split("|") if g}
    return F.Vocabularies(
        user_ids=sorted(catalog.users),
        item_ids=sorted(catalog.items),
        genders=sorted({u["gender"] or "" for u in people}),
        occupations=sorted({u["occupation"] or "" for u in people}),
        zip_prefixes=sorted({(u["zip_code"] or "")[: F.ZIP_PREFIX_LENGTH] for u in people}),
        genres=sorted(genres),
        titles=[i["title"] or "" for i in catalog.items.values()],
    )
