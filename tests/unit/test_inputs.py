"""The app's request tensors, built from the manifest's feature spec alone, and the load-time
check that the app can build every input a version asks for."""

from pathlib import Path

import numpy as np
import pytest

from app.artifacts import ArtifactError, ModelVersion, check_inputs
from app.db.queries import UserProfile
from app.inputs import profile_columns
from app.manifest import FeatureSpec
from tests.versions import bare_version

# A version exported before the catalog contract: age was an int64 input.
INPUTS = {
    "user_id": "string",
    "age": "int64",
    "history": "string",
    "history_ratings": "float32",
}


def version(inputs: dict[str, str], ratings_feature: str | None) -> ModelVersion:
    return bare_version(inputs=inputs, history_length=3, history_ratings_feature=ratings_feature)


def attributes(age, gender, occupation, zip_code) -> dict:  # type: ignore[no-untyped-def]
    return {"age": age, "gender": gender, "occupation": occupation, "zip_code": zip_code}


def profiles() -> list[UserProfile]:
    return [
        UserProfile(
            "a", attributes(30, "F", "x", "1"), ["i4", "i3", "i2", "i1"], [5.0, None, 2.0, 1.0]
        ),
        UserProfile("b", attributes(None, None, None, None), ["i9"], [3.0]),
        UserProfile("c", attributes(40, "M", "y", "2")),  # no history at all
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
    assert columns["age"].dtype == np.int64 and columns["age"].tolist() == [30, 0, 40]


def test_a_version_without_history_ratings_gets_no_such_input() -> None:
    """Versions exported before the feature existed keep their old signature."""
    old = {name: dtype for name, dtype in INPUTS.items() if name != "history_ratings"}
    columns = profile_columns(version(old, None), profiles())
    assert set(columns) == {"user_id", "age", "history"}


def test_attributes_fill_their_inputs_by_name_missing_as_empty_or_nan() -> None:
    """A catalog-contract version: numbers as float32 (NaN missing), everything else as
    strings ("" missing), whatever the stored JSON holds; an attribute the profile lacks
    altogether counts as missing."""
    inputs = {"user_id": "string", "age": "float32", "zip_code": "string", "plan": "string"}
    users = [
        UserProfile("a", {"age": 30, "zip_code": 94043, "plan": "pro"}),
        UserProfile("b", {"age": None, "zip_code": None}),  # no "plan" stored at all
        UserProfile("c"),  # a catalog without user attributes
    ]
    columns = profile_columns(version(inputs, None), users)
    assert set(columns) == set(inputs)
    assert columns["age"].dtype == np.float32
    np.testing.assert_array_equal(columns["age"], [30.0, np.nan, np.nan])
    assert columns["zip_code"].tolist() == ["94043", "", ""]
    assert columns["plan"].tolist() == ["pro", "", ""]


def test_int_inputs_of_old_versions_take_numbers_stored_as_floats() -> None:
    users = [UserProfile("a", {"age": 30.0}), UserProfile("b", {})]
    columns = profile_columns(version({"user_id": "string", "age": "int64"}, None), users)
    assert columns["age"].dtype == np.int64 and columns["age"].tolist() == [30, 0]


def spec(inputs: dict[str, str], user_attributes: list[str] | None) -> FeatureSpec:
    """A manifest's feature spec; without `user_attributes` (None) as older ones were."""
    raw = {
        "inputs": {name: {"dtype": dtype, "shape": [None]} for name, dtype in inputs.items()},
        "history_feature": "history",
        "history_length": 3,
        "history_ratings_feature": "history_ratings",
    }
    if user_attributes is not None:
        raw["user_attributes"] = user_attributes
    return FeatureSpec.model_validate(raw)


OWN = {"user_id": "string", "history": "string", "history_ratings": "float32"}


def test_check_inputs_accepts_declared_attributes_and_its_own_inputs() -> None:
    check_inputs(Path("m.json"), spec({**OWN, "age": "float32"}, ["age"]))
    check_inputs(Path("m.json"), spec(OWN, []))  # a catalog without user features


def test_check_inputs_refuses_an_input_that_is_not_a_user_attribute() -> None:
    needed = spec({**OWN, "age": "float32", "mood": "string"}, ["age"])
    with pytest.raises(ArtifactError, match=r"m\.json: .*cannot build \(mood\)"):
        check_inputs(Path("m.json"), needed)


def test_check_inputs_refuses_a_type_the_app_cannot_build() -> None:
    with pytest.raises(ArtifactError, match=r"cannot build \(flag\)"):
        check_inputs(Path("m.json"), spec({**OWN, "flag": "bool"}, ["flag"]))


def test_check_inputs_accepts_an_old_manifest_without_user_attributes() -> None:
    """Before the catalog contract every other input was a user attribute (MovieLens')."""
    old = spec({**OWN, "age": "int64", "gender": "string"}, None)
    assert old.user_attributes is None
    check_inputs(Path("m.json"), old)
