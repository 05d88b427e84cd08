"""Training examples and the temporal hold-out, built from a hand-made catalog."""

from pathlib import Path

import numpy as np
import pytest

from app.catalog import read_catalog_config
from models import features as F
from training.contract import build_contract
from training.dataset import (
    Catalog,
    Split,
    example_columns,
    item_columns,
    leave_last_out,
    query_columns,
)
from training.served import served_profiles

PAD = F.HISTORY_PAD
MOVIELENS_100K = read_catalog_config(
    Path(__file__).resolve().parents[2] / "training" / "catalogs" / "movielens-100k.toml"
)


def history_at(sequence: list[str], position: int, length: int) -> list[str]:
    """The history a one-user catalog gives the query at event `position`."""
    data = Catalog.from_records(
        MOVIELENS_100K, {"u": {}}, {i: {} for i in sequence}, {"u": sequence}
    )
    split = leave_last_out(data, build_contract(data, length))
    return query_columns(split, np.array([position]), np.array([0]))[F.HISTORY][0].tolist()


def test_history_is_most_recent_first_and_stops_before_position() -> None:
    assert history_at(["a", "b", "c", "d"], 3, 2) == ["c", "b"]


def test_short_history_is_padded_to_length() -> None:
    assert history_at(["a", "b", "c"], 1, 3) == ["a", PAD, PAD]
    assert history_at(["a", "b", "c"], 0, 2) == [PAD, PAD]


def test_history_keeps_only_the_newest_length_items() -> None:
    assert history_at(list("abcdefg"), 6, 3) == ["f", "e", "d"]


def user(**attributes) -> dict:
    base = {"age": 30, "gender": "F", "occupation": "writer", "zip_code": "94043"}
    return base | attributes


def item(item_id: str, genres: str | None = "Drama", release: str | None = "01-Jan-1995") -> dict:
    return {"title": f"Film {item_id}", "genres": genres, "release_date": release}


SEQUENCES = {"u1": ["a", "b", "c", "d"], "u2": ["b", "a", "c"], "u3": ["e"]}


def catalog(ratings: dict | None = None) -> Catalog:
    """u1 has four items, u2 three, u3 a single one; oldest first."""
    return Catalog.from_records(
        MOVIELENS_100K,
        users={
            "u1": user(age=24, gender="M", zip_code="85711"),
            "u2": user(age=None, gender=None, occupation=None, zip_code=None),
            "u3": user(occupation="doctor"),
        },
        items={
            "a": item("a", genres="Action|Comedy"),
            "b": item("b"),
            "c": item("c", genres=None, release=None),
            "d": item("d", genres="Comedy"),
            "e": item("e"),
        },
        sequences=SEQUENCES,
        ratings=ratings,
    )


def split_of(data: Catalog, length: int = 2, holdout: str = "test") -> Split:
    return leave_last_out(data, build_contract(data, length), holdout)  # type: ignore[arg-type]


def training_examples(split: Split) -> dict[str, np.ndarray]:
    """Every training example's model inputs, as `fit` streams them."""
    return example_columns(split, split.train_positions)


def test_training_examples_exclude_each_users_last_item() -> None:
    train = training_examples(split_of(catalog()))
    pairs = list(zip(train[F.USER_ID], train[F.ITEM_ID], strict=True))
    assert pairs == [("u1", "a"), ("u1", "b"), ("u1", "c"), ("u2", "b"), ("u2", "a"), ("u3", "e")]


def test_training_history_is_what_came_before_each_example() -> None:
    train = training_examples(split_of(catalog()))
    assert train[F.HISTORY].tolist() == [
        [PAD, PAD],  # u1 -> a
        ["a", PAD],  # u1 -> b
        ["b", "a"],  # u1 -> c
        [PAD, PAD],  # u2 -> b
        ["b", PAD],  # u2 -> a
        [PAD, PAD],  # u3 -> e
    ]


def test_hold_out_is_each_users_last_item_and_single_item_users_have_none() -> None:
    data = catalog()
    split = split_of(data)
    assert split.test_items == ["d", "c"]  # u3 has nothing left to hold out
    assert split.test_users == ["u1", "u2"]
    seen = [data.item_ids[split.seen_rows(i)].tolist() for i in range(2)]
    assert seen == [["a", "b", "c"], ["b", "a"]]


def test_validation_holds_out_the_item_before_the_last() -> None:
    data = catalog()
    split = split_of(data, holdout="validation")
    assert split.test_items == ["c", "a"] and split.test_users == ["u1", "u2"]
    train = training_examples(split)
    pairs = list(zip(train[F.USER_ID], train[F.ITEM_ID], strict=True))
    # Nobody trains on their test item (u1's d, u2's c); u3's only item is its test item.
    assert pairs == [("u1", "a"), ("u1", "b"), ("u2", "b")]


def test_test_history_is_what_a_live_request_would_see() -> None:
    length = 2
    split = split_of(catalog(), length)
    test = query_columns(split, split.test_positions, split.test_user_rows)
    for row, user_id in enumerate(test[F.USER_ID]):
        trained = SEQUENCES[user_id][:-1]
        live = (trained[::-1] + [PAD] * length)[:length]  # newest first, as the app asks
        assert test[F.HISTORY][row].tolist() == live


def test_train_item_counts_cover_training_examples_only() -> None:
    data = catalog()
    split = split_of(data)
    # d is only ever a held-out item; c is held out for u2 but trained on for u1.
    counts = dict(zip(data.item_ids.tolist(), split.item_counts.tolist(), strict=True))
    assert counts == {"a": 2, "b": 2, "c": 1, "d": 0, "e": 1}


def test_examples_carry_user_and_item_features_with_missing_values_filled() -> None:
    train = training_examples(split_of(catalog()))
    u2_first = train[F.USER_ID].tolist().index("u2")
    assert train["age"].dtype == np.float32 and np.isnan(train["age"][u2_first])
    assert train["gender"][u2_first] == ""
    assert train["zip_code"][u2_first] == ""
    u1_c = 2  # u1's third example is item c, which has no genres or date
    assert train["genres"][u1_c] == "" and train["release_date"][u1_c] == ""
    assert train["age"][0] == 24 and train["genres"][0] == "Action|Comedy"


def test_features_the_config_does_not_model_are_not_inputs() -> None:
    # MovieLens' url is stored (metadata) but declared feature = false.
    train = training_examples(split_of(catalog()))
    assert "url" not in train
    assert "url" in catalog().items


def test_empty_catalog_gives_an_empty_split() -> None:
    empty = Catalog.from_records(MOVIELENS_100K, users={}, items={}, sequences={})
    split = split_of(empty, 3)
    assert split.train_examples == 0 and split.test_items == [] and split.item_counts.size == 0


def test_users_are_in_natural_order_and_items_sorted() -> None:
    data = Catalog.from_records(
        MOVIELENS_100K,
        users={"10": {}, "2": {}, "1": {}},
        items={"b": {}, "10": {}, "2": {}},
        sequences={"10": ["b"], "2": ["2", "10"]},
    )
    assert data.user_ids.tolist() == ["1", "2", "10"]
    assert data.item_ids.tolist() == ["10", "2", "b"]
    assert data.starts.tolist() == [0, 0, 2, 3]
    assert data.item_ids[data.event_items].tolist() == ["2", "10", "b"]
    assert data.event_users.tolist() == [1, 1, 2]


def test_item_columns_follow_the_requested_order() -> None:
    data = catalog()
    columns = item_columns(data, np.array([2, 0]), build_contract(data, 2))
    assert columns[F.ITEM_ID].tolist() == ["c", "a"]
    assert columns["genres"].tolist() == ["", "Action|Comedy"]
    assert columns["release_date"].tolist() == ["", "01-Jan-1995"]
    assert isinstance(columns["title"], np.ndarray)


def test_candidate_probability_is_the_items_share_of_training_examples() -> None:
    train = training_examples(split_of(catalog()))
    # Items a, b, c, b, a, e out of 6 examples; a and b appear twice each.
    expected = [2 / 6, 2 / 6, 1 / 6, 2 / 6, 2 / 6, 1 / 6]
    np.testing.assert_allclose(train[F.CANDIDATE_PROBABILITY], expected, rtol=1e-6)


# b has no rating for u1.
RATINGS = {"u1": [5.0, None, 2.0, 4.0], "u2": [1.0, 3.0, 4.0], "u3": [2.0]}


def test_history_ratings_follow_the_history_with_nan_for_none_and_padding() -> None:
    split = split_of(catalog(RATINGS))
    train = training_examples(split)
    as_lists = [[None if np.isnan(r) else r for r in row] for row in train[F.HISTORY_RATINGS]]
    assert as_lists == [
        [None, None],  # u1 -> a
        [5.0, None],  # u1 -> b: a was rated 5
        [None, 5.0],  # u1 -> c: b has no rating
        [None, None],  # u2 -> b
        [1.0, None],  # u2 -> a
        [None, None],  # u3 -> e
    ]
    test = query_columns(split, split.test_positions, split.test_user_rows)
    newest, before = test[F.HISTORY_RATINGS][0]  # u1's history: c, b
    assert newest == 2.0 and np.isnan(before)
    assert split.test_ratings == [4.0, 4.0]
    assert [None if np.isnan(r) else r for r in train[F.RATING]] == [5.0, None, 2.0, 1.0, 3.0, 2.0]


def test_without_ratings_every_history_rating_is_nan() -> None:
    train = training_examples(split_of(catalog()))
    assert train[F.HISTORY_RATINGS].dtype == np.float32
    assert np.isnan(train[F.HISTORY_RATINGS]).all()


@pytest.mark.parametrize("holdout", ["test", "validation"])
def test_served_profiles_hold_what_training_held_out_with(holdout: str) -> None:
    """The profiles the served evaluation sends through the app carry the same history
    and history ratings as the held-out queries the model is trained to answer, and the
    user attributes as the database stores them (None where missing)."""
    length = 2
    split = split_of(catalog(RATINGS), length, holdout)
    profiles = served_profiles(split, 0, len(split.test_positions))
    test = query_columns(split, split.test_positions, split.test_user_rows)
    assert [p.user_id for p in profiles] == split.test_users
    for row, profile in enumerate(profiles):
        assert (profile.history + [PAD] * length)[:length] == test[F.HISTORY][row].tolist()
        stars = [np.nan if r is None else r for r in profile.history_ratings]
        np.testing.assert_array_equal(
            (stars + [np.nan] * length)[:length], test[F.HISTORY_RATINGS][row]
        )
    assert profiles[0].attributes == {
        "age": 24.0,
        "gender": "M",
        "occupation": "writer",
        "zip_code": "85711",
    }
    assert profiles[1].attributes == dict.fromkeys(("age", "gender", "occupation", "zip_code"))
