"""Training examples and the temporal hold-out, built from a hand-made catalog."""

import numpy as np
import pytest

from models import features as F
from training.dataset import Catalog, history_before, item_columns, leave_last_out, vocabularies
from training.served import served_profiles

PAD = F.HISTORY_PAD


def test_history_is_most_recent_first_and_stops_before_position() -> None:
    assert history_before(["a", "b", "c", "d"], 3, 2) == ["c", "b"]


def test_short_history_is_padded_to_length() -> None:
    assert history_before(["a", "b", "c"], 1, 3) == ["a", PAD, PAD]
    assert history_before(["a", "b", "c"], 0, 2) == [PAD, PAD]


def test_history_keeps_only_the_newest_length_items() -> None:
    assert history_before(list("abcdefg"), 7, 3) == ["g", "f", "e"]


def user(user_id: str, **attributes) -> dict:
    base = {"id": user_id, "age": 30, "gender": "F", "occupation": "writer", "zip_code": "94043"}
    return base | attributes


def item(item_id: str, genres: str | None = "Drama", release: str | None = "01-Jan-1995") -> dict:
    return {"id": item_id, "title": f"Film {item_id}", "genres": genres, "release_date": release}


def catalog() -> Catalog:
    """u1 has four items, u2 three, u3 a single one; oldest first."""
    return Catalog(
        users={
            "u1": user("u1", age=24, gender="M", zip_code="85711"),
            "u2": user("u2", age=None, gender=None, occupation=None, zip_code=None),
            "u3": user("u3", occupation="doctor"),
        },
        items={
            "a": item("a", genres="Action|Comedy"),
            "b": item("b"),
            "c": item("c", genres=None, release=None),
            "d": item("d", genres="Comedy"),
            "e": item("e"),
        },
        sequences={"u1": ["a", "b", "c", "d"], "u2": ["b", "a", "c"], "u3": ["e"]},
        fingerprint="test",
    )


def test_training_examples_exclude_each_users_last_item() -> None:
    split = leave_last_out(catalog(), history_length=2)
    pairs = list(zip(split.train[F.USER_ID], split.train[F.ITEM_ID], strict=True))
    assert pairs == [("u1", "a"), ("u1", "b"), ("u1", "c"), ("u2", "b"), ("u2", "a"), ("u3", "e")]


def test_training_history_is_what_came_before_each_example() -> None:
    split = leave_last_out(catalog(), history_length=2)
    assert split.train[F.HISTORY].tolist() == [
        [PAD, PAD],  # u1 -> a
        ["a", PAD],  # u1 -> b
        ["b", "a"],  # u1 -> c
        [PAD, PAD],  # u2 -> b
        ["b", PAD],  # u2 -> a
        [PAD, PAD],  # u3 -> e
    ]


def test_hold_out_is_each_users_last_item_and_single_item_users_have_none() -> None:
    split = leave_last_out(catalog(), history_length=2)
    assert split.test_items == ["d", "c"]  # u3 has nothing left to hold out
    assert split.test_queries[F.USER_ID].tolist() == ["u1", "u2"]
    assert split.test_seen == [["a", "b", "c"], ["b", "a"]]


def test_test_history_is_what_a_live_request_would_see() -> None:
    data, length = catalog(), 2
    split = leave_last_out(data, history_length=length)
    for row, user_id in enumerate(split.test_queries[F.USER_ID]):
        trained = data.sequences[user_id][:-1]
        live = (trained[::-1] + [PAD] * length)[:length]  # newest first, as the app asks
        assert split.test_queries[F.HISTORY][row].tolist() == live


def test_train_item_counts_cover_training_examples_only() -> None:
    split = leave_last_out(catalog(), history_length=2)
    # d is only ever a held-out item; c is held out for u2 but trained on for u1.
    assert split.train_item_counts == {"a": 2, "b": 2, "c": 1, "e": 1}


def test_examples_carry_user_and_item_features_with_missing_values_filled() -> None:
    split = leave_last_out(catalog(), history_length=2)
    u2_first = split.train[F.USER_ID].tolist().index("u2")
    assert split.train[F.AGE][u2_first] == 0
    assert split.train[F.GENDER][u2_first] == ""
    assert split.train[F.ZIP_CODE][u2_first] == ""
    u1_c = 2  # u1's third example is item c, which has no genres or date
    assert split.train[F.GENRES][u1_c] == "" and split.train[F.RELEASE_DATE][u1_c] == ""
    assert split.train[F.AGE][0] == 24 and split.train[F.GENRES][0] == "Action|Comedy"


def test_empty_catalog_gives_an_empty_split() -> None:
    empty = Catalog(users={}, items={}, sequences={}, fingerprint="")
    split = leave_last_out(empty, history_length=3)
    assert split.train == {} and split.test_items == [] and split.train_item_counts == {}


def test_item_columns_follow_the_requested_order() -> None:
    columns = item_columns(catalog(), ["c", "a"])
    assert columns[F.ITEM_ID].tolist() == ["c", "a"]
    assert columns[F.GENRES].tolist() == ["", "Action|Comedy"]
    assert columns[F.RELEASE_DATE].tolist() == ["", "01-Jan-1995"]
    assert isinstance(columns[F.TITLE], np.ndarray)


def test_vocabularies_are_sorted_distinct_values() -> None:
    vocab = vocabularies(catalog())
    assert vocab.user_ids == ["u1", "u2", "u3"]
    assert vocab.item_ids == ["a", "b", "c", "d", "e"]
    assert vocab.genders == ["", "F", "M"]
    assert vocab.occupations == ["", "doctor", "writer"]
    assert vocab.zip_prefixes == ["", "857", "940"]
    assert vocab.genres == ["Action", "Comedy", "Drama"]
    assert vocab.titles == ["Film a", "Film b", "Film c", "Film d", "Film e"]


def test_candidate_probability_is_the_items_share_of_training_examples() -> None:
    split = leave_last_out(catalog(), history_length=2)
    # Items a, b, c, b, a, e out of 6 examples; a and b appear twice each.
    expected = [2 / 6, 2 / 6, 1 / 6, 2 / 6, 2 / 6, 1 / 6]
    np.testing.assert_allclose(split.train[F.CANDIDATE_PROBABILITY], expected, rtol=1e-6)


def rated_catalog() -> Catalog:
    """catalog() with ratings; b has none for u1."""
    data = catalog()
    data.ratings = {"u1": [5.0, None, 2.0, 4.0], "u2": [1.0, 3.0, 4.0], "u3": [2.0]}
    return data


def test_history_ratings_follow_the_history_with_nan_for_none_and_padding() -> None:
    data = rated_catalog()
    split = leave_last_out(data, history_length=2)
    as_lists = [[None if np.isnan(r) else r for r in row] for row in split.train[F.HISTORY_RATINGS]]
    assert as_lists == [
        [None, None],  # u1 -> a
        [5.0, None],  # u1 -> b: a was rated 5
        [None, 5.0],  # u1 -> c: b has no rating
        [None, None],  # u2 -> b
        [1.0, None],  # u2 -> a
        [None, None],  # u3 -> e
    ]
    newest, before = split.test_queries[F.HISTORY_RATINGS][0]  # u1's history: c, b
    assert newest == 2.0 and np.isnan(before)
    assert split.test_ratings == [4.0, 4.0]


def test_without_ratings_every_history_rating_is_nan() -> None:
    split = leave_last_out(catalog(), history_length=2)
    assert split.train[F.HISTORY_RATINGS].dtype == np.float32
    assert np.isnan(split.train[F.HISTORY_RATINGS]).all()


@pytest.mark.parametrize("holdout", ["test", "validation"])
def test_served_profiles_hold_what_training_held_out_with(holdout: str) -> None:
    """The profiles the served evaluation sends through the app carry the same history
    and history ratings as the held-out queries the model is trained to answer."""
    data, length = rated_catalog(), 2
    split = leave_last_out(data, history_length=length, holdout=holdout)
    profiles = served_profiles(data, split)
    assert [p.user_id for p in profiles] == split.test_users
    for row, profile in enumerate(profiles):
        assert (profile.history + [PAD] * length)[:length] == split.test_queries[F.HISTORY][
            row
        ].tolist()
        stars = [np.nan if r is None else r for r in profile.history_ratings]
        np.testing.assert_array_equal(
            (stars + [np.nan] * length)[:length], split.test_queries[F.HISTORY_RATINGS][row]
        )
