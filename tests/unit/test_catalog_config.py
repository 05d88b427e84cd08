"""The catalog config: what a declaration may say, the messages a wrong one gets, the
shipped configs, and how a field cleans raw values and answers as metadata."""

import tomllib
from pathlib import Path

import pytest

from app.catalog import (
    CatalogConfig,
    CatalogError,
    FieldSpec,
    Kind,
    parse_catalog_config,
    read_catalog_config,
)

CATALOGS = Path(__file__).resolve().parents[2] / "training" / "catalogs"


def shop(items: list[dict], users: list[dict] | None = None, **item_options) -> dict:
    """A raw (parsed TOML) config of a small shop; `users` adds a user file."""
    raw = {
        "name": "shop",
        "items": {"file": "items.csv", "id": "sku", "fields": items, **item_options},
        "interactions": {"file": "orders.csv"},
    }
    if users is not None:
        raw["users"] = {"file": "customers.csv", "fields": users}
    return raw


def refused(raw: dict) -> str:
    with pytest.raises(CatalogError) as caught:
        parse_catalog_config(raw, "shop.toml")
    return str(caught.value)


def test_a_minimal_config_has_no_users_and_categorical_defaults() -> None:
    config = parse_catalog_config(shop([{"name": "color"}]))
    assert config.users is None and config.user_fields == [] and config.user_features() == []
    [color] = config.item_features()
    assert color.kind == Kind.categorical and color.source == "color" and color.feature


def test_an_unknown_kind_names_the_field_and_the_kinds() -> None:
    message = refused(shop([{"name": "color", "kind": "colour"}]))
    assert message.startswith("shop.toml: items.fields.0.kind: ")
    assert "'categorical', 'multi_categorical', 'numeric', 'text' or 'date'" in message


def test_repeated_field_names_are_refused() -> None:
    message = refused(shop([{"name": "color"}, {"name": "size"}, {"name": "color"}]))
    assert message.endswith("items.fields: field names must be unique, repeated: color")


@pytest.mark.parametrize("name", ["user_id", "item_id", "history", "rating", "id"])
def test_names_the_pipeline_uses_itself_are_reserved(name: str) -> None:
    assert refused(shop([{"name": name}])).endswith(f"items.fields: reserved field names: {name}")
    users = shop([], users=[{"name": name}])
    assert refused(users).endswith(f"users.fields: reserved field names: {name}")


def test_a_field_name_must_be_a_lower_case_identifier() -> None:
    assert refused(shop([{"name": "Color"}])).startswith("shop.toml: items.fields.0.name: ")


def test_a_user_field_may_not_share_an_item_fields_name() -> None:
    message = refused(shop([{"name": "color"}], users=[{"name": "color"}, {"name": "city"}]))
    assert message == "shop.toml: (top level): Value error, user and item fields share names: color"


def test_metadata_may_only_name_declared_item_fields() -> None:
    message = refused(shop([{"name": "color"}], metadata=["color", "price"]))
    assert message.endswith("items.metadata names undeclared fields: price")


def test_a_pattern_must_compile_and_have_a_group() -> None:
    broken = refused(shop([{"name": "year", "pattern": r"\((\d{4}\)"}]))
    assert "items.fields.0: " in broken and "pattern: not a regular expression" in broken
    groupless = refused(shop([{"name": "year", "pattern": r"\d{4}"}]))
    assert groupless.endswith("pattern: needs a group, (...), for the value to keep")


def test_boundaries_must_increase() -> None:
    fields = [{"name": "price", "kind": "numeric", "boundaries": [10, 50, 20]}]
    assert refused(shop(fields)).endswith(
        "items.fields.0: Value error, boundaries: must be strictly increasing"
    )
    repeated = [{"name": "price", "kind": "numeric", "boundaries": [10, 10, 20]}]
    assert refused(shop(repeated)).endswith("boundaries: must be strictly increasing")


def test_an_optional_pattern_group_that_matches_nothing_stores_nothing() -> None:
    assert FieldSpec(name="y", pattern=r"x(\d)?").clean("x") is None
    assert FieldSpec(name="y", pattern=r"x(\d)?").clean("x7") == "7"


def test_a_misspelt_option_is_refused_not_ignored() -> None:
    message = refused(shop([{"name": "price", "kinds": "numeric"}]))
    assert message == "shop.toml: items.fields.0.kinds: Extra inputs are not permitted"


def test_missing_and_malformed_files_say_which_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"nope\.toml: no such catalog config"):
        read_catalog_config(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "shop"\n[items\n')
    with pytest.raises(CatalogError, match=r"broken\.toml: not valid TOML"):
        read_catalog_config(broken)


def test_movielens_100k_config_declares_users_items_and_metadata() -> None:
    config = read_catalog_config(CATALOGS / "movielens-100k.toml")
    assert config.format == "movielens-100k" and config.same_time_order == "file"
    assert [f.name for f in config.user_features()] == ["age", "gender", "occupation", "zip_code"]
    assert [(f.name, f.kind) for f in config.item_features()] == [
        ("genres", Kind.multi_categorical),
        ("release_date", Kind.date),
        ("title", Kind.text),
    ]
    assert config.item_field("url").feature is False  # stored and returned, not learned
    assert config.items.metadata == ["title", "genres", "release_date", "url"]
    assert config.interactions.rating_range == (1, 5)


def test_movielens_latest_small_config_has_no_users_and_a_year_from_the_title() -> None:
    config = read_catalog_config(CATALOGS / "movielens-latest-small.toml")
    assert config.users is None and config.user_features() == []
    year = config.item_field("year")
    assert year.kind == Kind.date and year.source == "title"
    assert year.clean("Heat (1995)") == "1995"
    assert config.item_field("genres").values_of("(no genres listed)") == []


def test_every_shipped_config_parses() -> None:
    paths = sorted(CATALOGS.glob("*.toml"))
    assert {p.stem for p in paths} >= {"movielens-100k", "movielens-latest-small"}
    for path in paths:
        assert isinstance(read_catalog_config(path), CatalogConfig)


def test_clean_strips_and_turns_empty_and_missing_values_into_none() -> None:
    spec = FieldSpec(name="genres", missing=["(no genres listed)", "n/a"])
    assert spec.clean("  Drama ") == "Drama"
    assert [spec.clean(v) for v in (None, "", "   ", "n/a", " (no genres listed) ")] == [None] * 5


def test_clean_keeps_the_patterns_first_group_or_nothing() -> None:
    spec = FieldSpec(name="year", kind=Kind.date, pattern=r"\((\d{4})\)\s*$")
    assert spec.clean("Heat (1995)") == "1995"
    assert spec.clean("Heat (1995) ") == "1995"
    assert spec.clean("Heat (1995) extended") is None  # no match stores nothing
    assert spec.clean("Untitled") is None and spec.clean("") is None


def test_metadata_lists_multi_valued_fields_and_keeps_the_others_as_stored() -> None:
    fields = [
        {"name": "name", "kind": "text"},
        {"name": "tags", "kind": "multi_categorical", "separator": ";", "missing": ["none"]},
        {"name": "price", "kind": "numeric"},
        {"name": "color"},  # not in the metadata
    ]
    config = parse_catalog_config(shop(fields, metadata=["tags", "name", "price"]))
    stored = {"name": "Mug", "tags": "kitchen; gift;none;", "price": 4.5, "color": "red"}
    assert config.metadata_of(stored) == {"tags": ["kitchen", "gift"], "name": "Mug", "price": 4.5}
    assert list(config.metadata_of(stored)) == ["tags", "name", "price"]  # the config's order
    assert config.metadata_of({}) == {"tags": [], "name": None, "price": None}


def test_the_readmes_example_config_is_valid() -> None:
    """The README's complete example is a config the loader accepts, as documented."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("## Your catalog", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    config = parse_catalog_config(tomllib.loads(block), "README.md")
    assert config.users is not None and config.interactions.event_types[0] == "view"
    assert [f.name for f in config.user_features()] == ["country", "plan", "birth_year"]
    assert not config.item_field("image_url").feature
    assert config.metadata_of({"tags": "a;b", "price": 5})["tags"] == ["a", "b"]
