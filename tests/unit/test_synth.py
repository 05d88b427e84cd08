"""`recsys data synth`: files the catalog readers accept, and the structure a model needs
(popularity skew, taste clusters, sequences, time order with some same-second ties)."""

import csv
from collections import Counter
from pathlib import Path

import pytest

from training.catalog_files import check_files, read_interactions, read_items, read_users
from training.synth import CHUNK_EVENTS, write_synthetic


def flat(batches) -> list:  # type: ignore[no-untyped-def]
    return [record for batch in batches for record in batch]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shop")
    write_synthetic(folder, users=300, items=400, interactions=30_000, seed=7)
    return folder


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_file_reads_through_its_own_config(shop: Path) -> None:
    from app.catalog import read_catalog_config

    config = read_catalog_config(shop / "catalog.toml")
    check_files(config, shop)
    users, items = flat(read_users(config, shop)), flat(read_items(config, shop))
    events = flat(read_interactions(config, shop))
    assert (len(users), len(items), len(events)) == (300, 400, 30_000)
    assert {e.user_id for e in events} <= {u.id for u in users}
    assert {e.item_id for e in events} <= {i.id for i in items}
    keys = {(e.user_id, e.item_id, e.event_type, e.occurred_at) for e in events}
    assert len(keys) == len(events)  # each line is one row in the database
    assert {e.event_type for e in events} == {"view", "click", "purchase"}
    assert all(e.rating is None for e in events)
    assert set(items[0].attributes) == {"name", "category", "tags", "price", "brand", "launched"}
    assert isinstance(users[0].attributes["birth_year"], int | None)


def test_popularity_is_skewed_and_sequences_stay_in_a_category(shop: Path) -> None:
    events = rows(shop / "interactions.csv")
    category = {row["sku"]: row["category"] for row in rows(shop / "items.csv")}
    top = sum(n for _, n in Counter(e["sku"] for e in events).most_common(4))  # 1% of items
    assert top > 0.08 * len(events)
    pairs = [
        (a, b)
        for a, b in zip(events, events[1:], strict=False)
        if a["customer_id"] == b["customer_id"]
    ]
    same = sum(category[a["sku"]] == category[b["sku"]] for a, b in pairs) / len(pairs)
    shares = Counter(category[e["sku"]] for e in events)
    by_chance = sum((n / len(events)) ** 2 for n in shares.values())
    assert same > 0.5 > 2 * by_chance  # the next event mostly stays where the last one was
    funnel = sum(
        b["event"] == "click" and a["event"] == "view" and a["sku"] == b["sku"] for a, b in pairs
    )
    assert funnel > 0.3 * sum(b["event"] == "click" for _, b in pairs)


def test_each_customer_goes_forward_in_time_with_some_ties(shop: Path) -> None:
    events = rows(shop / "interactions.csv")
    pairs = [
        (a, b)
        for a, b in zip(events, events[1:], strict=False)
        if a["customer_id"] == b["customer_id"]
    ]
    assert all(a["time"] <= b["time"] for a, b in pairs)
    ties = sum(a["time"] == b["time"] for a, b in pairs)
    assert 0.005 * len(pairs) < ties < 0.1 * len(pairs)


def test_without_users_and_across_chunks(tmp_path: Path) -> None:
    total = CHUNK_EVENTS + 1000  # more than one chunk of customers
    config = write_synthetic(tmp_path, users=500, items=50, interactions=total, with_users=False)
    assert config.users is None and not (tmp_path / "users.csv").exists()
    with (tmp_path / "interactions.csv").open() as handle:
        customers = [line.split(",", 1)[0] for line in handle][1:]
    assert len(customers) == total
    # Customers are written whole, one after another: never split across chunks.
    runs = [c for i, c in enumerate(customers) if i == 0 or customers[i - 1] != c]
    assert len(runs) == len(set(runs)) == 500


def test_the_seed_decides_everything(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for folder, seed in ((a, 1), (b, 1), (c, 2)):
        write_synthetic(folder, users=20, items=30, interactions=500, seed=seed)
    for name in ("users.csv", "items.csv", "interactions.csv", "catalog.toml"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / "interactions.csv").read_bytes() != (c / "interactions.csv").read_bytes()
