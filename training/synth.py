"""`recsys data synth`: a synthetic shop in the generic catalog format, with structure to learn.

Customers and products, not MovieLens: the fields differ in names and kinds on purpose
(users: country, plan, birth_year; items: name, category, tags, price, brand, launched;
events: view / click / purchase, no ratings), so a pipeline that only works on MovieLens
fails here. The structure is what real logs have:

- taste clusters: every customer has a home cluster and a second one; a product's
  category, tags, brand, price and launch year come mostly from its cluster;
- popularity skew: a Zipf law over products, inside each cluster too;
- sequences: a customer's next event mostly stays in the current cluster (switching now
  and then, back home more often than elsewhere), and a view is often followed by a
  click, then a purchase, of the same product: the next item depends on the last ones;
- time: each customer's events go forward in time, sessions of seconds to minutes
  apart separated by days, with some events in the same second.

Everything is generated with numpy a chunk of customers at a time and written as it is
generated, so 10 million events take a bounded amount of memory. No two events share
(customer, product, event, second): each line loads as one row.
"""

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.catalog import CatalogConfig, read_catalog_config

CLUSTERS = 32
CHUNK_EVENTS = 250_000  # events generated and written at a time
EVENTS = ("view", "click", "purchase")
FIRST_KIND = (0.82, 0.14, 0.04)  # an event that does not follow up the previous one
FOLLOW_UP = 0.3  # the next event is the same product's next step (view -> click -> ...)
STAY = 0.85  # the next event stays in the current cluster
HOME = 0.65  # a switch goes back to the home cluster; else the second (0.25), else any
SECOND = 0.25
OFF_CLUSTER = 0.08  # share of events on a product of any cluster, by popularity alone
START = np.datetime64("2023-01-01T00:00:00", "s").astype(np.int64)
SPAN = 365 * 86_400  # each customer's events spread over about a year
IN_SESSION = 45.0  # mean seconds between events of one session
CATEGORIES = ("books", "music", "films", "games", "garden", "kitchen", "sports", "toys",
              "beauty", "tools", "outdoor", "office")  # fmt: skip
NOUNS = {
    "books": ("Novel", "Atlas", "Cookbook", "Memoir"), "music": ("Album", "Vinyl", "Boxset"),
    "films": ("Bluray", "Series", "Documentary"), "games": ("Console", "Puzzle", "Boardgame"),
    "garden": ("Hose", "Planter", "Shears"), "kitchen": ("Skillet", "Kettle", "Knife"),
    "sports": ("Racket", "Helmet", "Ball"), "toys": ("Robot", "Blocks", "Doll"),
    "beauty": ("Serum", "Palette", "Brush"), "tools": ("Drill", "Wrench", "Saw"),
    "outdoor": ("Tent", "Lantern", "Backpack"), "office": ("Notebook", "Stapler", "Lamp"),
}  # fmt: skip
ADJECTIVES = ("Classic", "Compact", "Deluxe", "Eco", "Pro", "Mini", "Ultra", "Smart",
              "Vintage", "Urban", "Nordic", "Bold")  # fmt: skip
TAGS = ("gift", "sale", "new", "bestseller", "eco", "premium", "budget", "handmade",
        "limited", "family", "kids", "retro", "travel", "wireless", "organic", "vegan",
        "bundle", "seasonal", "outdoor", "indoor", "classic", "trending", "local",
        "pro")  # fmt: skip
COUNTRIES = ("US", "GB", "DE", "FR", "IN", "BR", "JP", "CA", "ES", "IT", "NL", "SE", "MX", "AU")
PLANS = ("free", "plus", "pro")
PLAN_SHARE = (0.7, 0.22, 0.08)
PLAN_ACTIVITY = (1.0, 1.6, 2.5)  # paying customers come back more often

Progress = Callable[[str, int], None]  # (file, rows written so far)


@dataclass(frozen=True)
class World:
    """What events are drawn from: every product's and customer's cluster, popularity."""

    item_cluster: np.ndarray  # [items]
    popularity: np.ndarray  # [items], sums to 1
    user_home: np.ndarray  # [users]
    user_second: np.ndarray  # [users]
    user_plan: np.ndarray  # [users], index into PLANS


def write_synthetic(
    out: Path,
    *,
    users: int,
    items: int,
    interactions: int,
    with_users: bool = True,
    seed: int = 0,
    on_progress: Progress | None = None,
) -> CatalogConfig:
    """Write users.csv (unless with_users is False), items.csv, interactions.csv and
    catalog.toml into `out`; returns the catalog config, read back from its file."""
    report = on_progress or (lambda _file, _rows: None)
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    world = _world(rng, users, items)
    if with_users:
        _write_users(out / "users.csv", world, rng, report)
    _write_items(out / "items.csv", world, rng, report)
    _write_events(out / "interactions.csv", world, interactions, rng, report)
    toml = _catalog_toml(users, items, interactions, seed, with_users)
    (out / "catalog.toml").write_text(toml, encoding="utf-8")
    return read_catalog_config(out / "catalog.toml")


def _world(rng: np.random.Generator, users: int, items: int) -> World:
    clusters = min(CLUSTERS, items)
    item_cluster = rng.permutation(np.arange(items) % clusters)  # none left empty
    weights = 1.0 / np.arange(1, items + 1) ** 1.05
    popularity = weights[rng.permutation(items)]
    cluster_share = rng.dirichlet(np.full(clusters, 2.0))  # some tastes are commoner
    home = rng.choice(clusters, size=users, p=cluster_share)
    second = (home + rng.integers(1, max(clusters, 2), size=users)) % clusters
    plan = rng.choice(len(PLANS), size=users, p=PLAN_SHARE)
    return World(item_cluster, popularity / popularity.sum(), home, second, plan)


def _writer(path: Path):  # type: ignore[no-untyped-def]
    handle = path.open("w", encoding="utf-8", newline="")
    return handle, csv.writer(handle, lineterminator="\n")


def _user_ids(index: np.ndarray) -> list[str]:
    return [f"C{i + 1:07d}" for i in index.tolist()]


def _item_ids(index: np.ndarray) -> list[str]:
    return [f"SKU-{i + 1:06d}" for i in index.tolist()]


def _write_users(path: Path, world: World, rng: np.random.Generator, report: Progress) -> None:
    n = len(world.user_home)
    home_country = rng.integers(len(COUNTRIES), size=CLUSTERS)
    # A country per cluster for some, the commoner countries for the rest.
    anywhere = rng.choice(len(COUNTRIES), size=n, p=_zipf(len(COUNTRIES), 1.0))
    country = np.where(rng.random(n) < 0.4, home_country[world.user_home], anywhere)
    born = 1960 + (world.user_home * 37 % 40) + rng.normal(0, 7, size=n)
    born = np.clip(np.round(born), 1940, 2008).astype(int)
    missing_year = rng.random(n) < 0.03
    handle, writer = _writer(path)
    with handle:
        writer.writerow(["customer_id", "country", "plan", "birth_year"])
        for start in range(0, n, CHUNK_EVENTS):
            part = slice(start, min(n, start + CHUNK_EVENTS))
            years = [
                "" if gone else str(y)
                for y, gone in zip(born[part], missing_year[part], strict=True)
            ]
            writer.writerows(
                zip(
                    _user_ids(np.arange(part.start, part.stop)),
                    [COUNTRIES[c] for c in country[part]],
                    [PLANS[p] for p in world.user_plan[part]],
                    years,
                    strict=True,
                )
            )
            report(path.name, part.stop)


def _zipf(n: int, exponent: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return weights / weights.sum()


def _write_items(path: Path, world: World, rng: np.random.Generator, report: Progress) -> None:
    handle, writer = _writer(path)
    with handle:
        writer.writerow(["sku", "name", "category", "tags", "price", "brand", "launch_date"])
        n = len(world.item_cluster)
        for start in range(0, n, CHUNK_EVENTS):
            index = np.arange(start, min(n, start + CHUNK_EVENTS))
            writer.writerows(_item_rows(index, world.item_cluster[index], rng))
            report(path.name, int(index[-1]) + 1)


def _item_rows(index: np.ndarray, cluster: np.ndarray, rng: np.random.Generator) -> list:
    n = len(index)
    category = np.where(
        rng.random(n) < 0.9, cluster % len(CATEGORIES), rng.integers(len(CATEGORIES), size=n)
    )
    # Each cluster's own tags (a window of the list), price level, brands and era.
    tag_start = cluster * 5 % len(TAGS)
    tag_count = rng.integers(1, 4, size=n)
    tag_offsets = rng.integers(0, 6, size=(n, 3))
    price = np.round(np.exp(rng.normal(2.5 + (cluster % 7) * 0.4, 0.5)), 2)
    brand = np.where(rng.random(n) < 0.85, cluster * 4 + rng.integers(4, size=n), -1)
    launched = 2010 + (cluster * 11 % 14) + rng.integers(-2, 3, size=n)
    day = rng.integers(1, 366, size=n)
    adjective = rng.integers(len(ADJECTIVES), size=n)
    odd_name = rng.random(n) < 0.03  # quotes and commas, as real product names have
    rows = []
    for k in range(n):
        name_of = CATEGORIES[category[k]]
        noun = NOUNS[name_of][index[k] % len(NOUNS[name_of])]
        name = f"{ADJECTIVES[adjective[k]]} {noun} {index[k] % 97}"
        if odd_name[k]:
            name = f'{name}, "Limited" edition'
        tags = dict.fromkeys(TAGS[(tag_start[k] + o) % len(TAGS)] for o in tag_offsets[k])
        rows.append(
            (
                f"SKU-{index[k] + 1:06d}",
                name,
                name_of,
                ";".join(list(tags)[: tag_count[k]]),
                "" if k % 50 == 49 else f"{price[k]:.2f}",  # a few prices unknown
                f"brand{brand[k]:03d}" if brand[k] >= 0 else "acme",
                (np.datetime64(f"{launched[k]}-01-01") + day[k] - 1).astype(str),
            )
        )
    return rows


def _write_events(
    path: Path, world: World, total: int, rng: np.random.Generator, report: Progress
) -> None:
    counts = _events_per_user(world, total, rng)
    sampler = _ItemSampler(world)
    handle, writer = _writer(path)
    written = 0
    with handle:
        writer.writerow(["customer_id", "sku", "event", "time"])
        ends = np.cumsum(counts)
        start_user = 0
        while start_user < len(counts):
            # Whole customers per chunk, about CHUNK_EVENTS events each.
            stop_user = int(
                np.searchsorted(ends, ends[start_user] - counts[start_user] + CHUNK_EVENTS)
            )
            stop_user = max(stop_user, start_user + 1)
            chunk = np.arange(start_user, min(stop_user, len(counts)))
            n, rows = _events(chunk, counts[chunk], world, sampler, rng)
            writer.writerows(rows)
            written += n
            report(path.name, written)
            start_user = int(chunk[-1]) + 1


def _events_per_user(world: World, total: int, rng: np.random.Generator) -> np.ndarray:
    """Heavy-tailed activity (a few customers do a lot), more for paying plans."""
    n = len(world.user_home)
    weight = rng.lognormal(0.0, 1.0, size=n) * np.asarray(PLAN_ACTIVITY)[world.user_plan]
    share = weight / weight.sum()
    if total >= n:  # everyone does something
        return 1 + rng.multinomial(total - n, share)
    return rng.multinomial(total, share)


class _ItemSampler:
    """Draws products of given clusters by popularity (one searchsorted for all)."""

    def __init__(self, world: World) -> None:
        order = np.argsort(world.item_cluster, kind="stable")
        clusters = world.item_cluster[order]
        weights = world.popularity[order]
        # Within each cluster, cumulative popularity in (0, 1], shifted by the cluster's
        # number: a draw u in cluster c is the first product whose key exceeds c + u.
        totals = np.bincount(clusters, weights=weights)
        within = np.cumsum(weights) - np.concatenate([[0.0], np.cumsum(totals)])[clusters]
        self.keys = clusters + within / totals[clusters]
        self.order = order
        self.global_cdf = np.cumsum(world.popularity)

    def draw(self, cluster: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        u = rng.random(len(cluster))
        at = np.searchsorted(self.keys, cluster + u, side="left")
        items = self.order[np.minimum(at, len(self.order) - 1)]
        anywhere = rng.random(len(cluster)) < OFF_CLUSTER
        picked = np.searchsorted(
            self.global_cdf, rng.random(int(anywhere.sum())) * self.global_cdf[-1]
        )
        items[anywhere] = np.minimum(picked, len(self.order) - 1)
        return items


def _events(
    users: np.ndarray,
    counts: np.ndarray,
    world: World,
    sampler: _ItemSampler,
    rng: np.random.Generator,
) -> tuple[int, zip]:
    """One chunk of customers' events, each customer's in time order."""
    active = counts > 0
    users, counts = users[active], counts[active]
    n = int(counts.sum())
    user = np.repeat(users, counts)
    starts = np.cumsum(counts) - counts
    first = np.zeros(n, dtype=bool)
    first[starts] = True
    cluster, switched = _clusters(user, first, world, rng)
    item, kind, follows = _follow_ups(sampler.draw(cluster, rng), first, rng)
    when = _times(user, counts, starts, first, switched, follows, item, kind, rng)
    stamps = np.datetime_as_string(when.astype("datetime64[s]"), unit="s", timezone="UTC")
    return n, zip(
        _user_ids(user),
        _item_ids(item),
        np.asarray(EVENTS)[kind].tolist(),
        stamps.tolist(),
        strict=True,
    )


def _clusters(
    user: np.ndarray, first: np.ndarray, world: World, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A Markov chain over clusters: stay, or switch (home, second, anywhere)."""
    n = len(user)
    clusters = int(world.item_cluster.max()) + 1
    switch = first | (rng.random(n) > STAY)
    r = rng.random(n)
    target = np.where(
        r < HOME,
        world.user_home[user],
        np.where(r < HOME + SECOND, world.user_second[user], rng.integers(clusters, size=n)),
    )
    since = np.maximum.accumulate(np.where(switch, np.arange(n), 0))
    return target[since], switch


def _follow_ups(
    item: np.ndarray, first: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chains of the same product, one step further each time (view, click, purchase)."""
    n = len(item)
    positions = np.arange(n)
    follows = (rng.random(n) < FOLLOW_UP) & ~first
    base = rng.choice(len(EVENTS), size=n, p=FIRST_KIND)
    while True:  # a chain past "purchase" starts afresh there; a few rounds at most
        head = np.maximum.accumulate(np.where(follows, 0, positions))
        kind = base[head] + (positions - head)
        beyond = kind >= len(EVENTS)
        if not beyond.any():
            return item[head], kind, follows
        follows &= ~beyond


def _times(
    user: np.ndarray,
    counts: np.ndarray,
    starts: np.ndarray,
    first: np.ndarray,
    switched: np.ndarray,
    follows: np.ndarray,
    item: np.ndarray,
    kind: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Seconds since 1970: sessions of quick events, days apart, over about a year."""
    n = len(user)
    new_session = (switched & (rng.random(n) < 0.5)) | (rng.random(n) < 0.05)
    share = 0.125  # about the share of new sessions just drawn
    per_user = np.maximum(600.0, (SPAN / counts - (1 - share) * IN_SESSION) / share)
    scale = np.where(new_session, np.repeat(per_user, counts), IN_SESSION)
    scale = np.where(follows, IN_SESSION / 2, scale)
    # Capped: a customer with few events would otherwise wander off for years.
    gaps = np.minimum(np.floor(rng.exponential(scale)), SPAN // 4).astype(np.int64)
    gaps[first] = 0
    # Same-second pairs, never three, and never one event twice: each line is one row.
    tied = (gaps == 0) & ~first
    before = np.concatenate([[False], tied[:-1]])
    same = np.concatenate([[False], (item[1:] == item[:-1]) & (kind[1:] == kind[:-1])])
    gaps[tied & (before | same)] = 1
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[starts], counts)
    begin = START + rng.integers(0, SPAN // 5, size=len(counts))
    return np.repeat(begin, counts) + elapsed


def _catalog_toml(users: int, items: int, events: int, seed: int, with_users: bool) -> str:
    users_section = """
[users]
file = "users.csv"
id = "customer_id"
fields = [
  { name = "country" },
  { name = "plan" },
  { name = "birth_year", kind = "numeric" },
]
"""
    description = f"Synthetic shop: {users:,} customers, {items:,} products, {events:,} events"
    return f"""# Written by `recsys data synth --seed {seed}` (training/synth.py): a synthetic shop.
name = "synthetic-shop"
description = "{description}"
format = "generic"
# The generator writes each customer's same-second events in an order of its own making.
same_time_order = "hashed"
{users_section if with_users else ""}
[items]
file = "items.csv"
id = "sku"
fields = [
  {{ name = "name", kind = "text" }},
  {{ name = "category" }},
  {{ name = "tags", kind = "multi_categorical", separator = ";" }},
  {{ name = "price", kind = "numeric" }},
  {{ name = "brand" }},
  {{ name = "launched", column = "launch_date", kind = "date" }},
]
metadata = ["name", "category", "brand", "price"]

[interactions]
file = "interactions.csv"
user = "customer_id"
item = "sku"
timestamp = "time"
timestamp_format = "iso"
event_type = "event"
event_types = ["view", "click", "purchase"]
"""
