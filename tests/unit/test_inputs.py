"""The app's request tensors, built from the manifest's feature spec alone."""

import numpy as np

from app.artifacts import ModelVersion
from app.db.queries import UserProfile
from app.inputs import profile_columns
from tests.versions import bare_version

INPUTS = {
    "user_id": "string",
    "age": "int64",
    "history": "string",
    "history_ratings": "float32",
}


def version(inputs: dict[str, str], ratings_feature: str | None) -> ModelVersion:
    return bare_version(inputs=inputs, history_length=3, history_ratings_feature=ratings_feature)


def profiles() -> list[UserProfile]:
    return [
        UserProfile("a", 30, "F", "x", "1", ["i4", "i3", "i2", "i1"], [5.0, None, 2.0, 1.0]),
        UserProfile("b", None, None, None, None, ["i9"], [3.0]),
        UserProfile("c", 40, "M", "y", "2"),  # no history at all
    ]


def test_history_and_its_ratings_are_truncated_and_padded_together() -> None:
    columns = profile_columns(version(INPUTS, "history_ratings"), profiles())
    assert columns["history"].tolist() == [["i4", "i3", "i2"], ["i9", "", ""], ["", "", ""]]
    ratings = columns["history_ratings"]
    assert ratings.dtype == np.float32 and ratings.shape == (3, 3)
    np.testing.assert_array_equal(
        ratings, [[5.0, np.nan, 2.0], [3.0, np.nan, np.nan], [np.nan] * 3]
    )
    assert columns["user_id"].tolist() == ["a", "b", "c"]
    assert columns["age"].tolist() == [30, 0, 40]


def test_a_version_without_history_ratings_gets_no_such_input() -> None:
    """Versions exported before the feature existed keep their old signature."""
    old = {name: dtype for name, dtype in INPUTS.items() if name != "history_ratings"}
    columns = profile_columns(version(old, None), profiles())
    assert set(columns) == {"user_id", "age", "history"}
