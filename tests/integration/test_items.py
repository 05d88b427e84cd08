"""Similar items, business filters and the item routes, on a real MovieLens version and a
real database of each backend."""

from pathlib import Path

import pytest

pytestmark = [pytest.mark.movielens, pytest.mark.model]

# Well-known titles: Toy Story, Star Wars, Pulp Fiction, The Silence of the Lambs, Fargo,
# The Godfather, Raiders of the Lost Ark, Return of the Jedi, The Empire Strikes Back,
# Titanic, Contact, The English Patient, Scream, Liar Liar, Air Force One,
# Independence Day, The Rock, Star Trek: First Contact, Jaws, Forrest Gump.
FAMOUS = ["1", "50", "56", "98", "100", "127", "174", "181", "172", "313", "258", "286",
          "288", "294", "300", "121", "117", "222", "234", "69"]  # fmt: skip


@pytest.fixture(scope="module")
def genres(movielens_dir: Path) -> dict[str, set[str]]:
    """u.item's genre flags, read apart from the project's parser."""
    lines = (movielens_dir / "u.genre").read_text().splitlines()
    names = [line.split("|")[0] for line in lines if line]
    found = {}
    for line in (movielens_dir / "u.item").read_bytes().decode("latin-1").splitlines():
        fields = line.split("|")
        found[fields[0]] = {n for n, flag in zip(names, fields[5:], strict=True) if flag == "1"}
    return found


async def test_similar_items_share_a_genre_far_more_often_than_chance(client, genres) -> None:
    shared, base = [], []
    for item in FAMOUS:
        body = (await client.get(f"/items/{item}/similar", params={"k": 10})).json()
        ids = [i["id"] for i in body["items"]]
        assert len(ids) == 10 and item not in ids and len(set(ids)) == 10
        shared.append(sum(bool(genres[i] & genres[item]) for i in ids) / len(ids))
        others = [i for i in genres if i != item]
        base.append(sum(bool(genres[i] & genres[item]) for i in others) / len(others))
    similar_rate, chance = sum(shared) / len(shared), sum(base) / len(base)
    assert similar_rate >= 1.3 * chance, (similar_rate, chance)


async def test_a_genre_filter_keeps_k_items_of_that_genre_on_both_endpoints(client, genres) -> None:
    fantasy = {i for i, g in genres.items() if "Fantasy" in g}  # 22 of 1,682 films
    for path in ("/recommendations/1", "/items/50/similar"):
        response = await client.get(path, params={"k": 10, "genres": "Fantasy"})
        body = response.json()
        ids = [i["id"] for i in body["items"]]
        assert len(ids) == 10 and set(ids) <= fantasy, (path, body)
        assert "shortfall" not in body


async def test_a_filter_with_too_few_items_says_so_instead_of_falling_short_silently(
    client, genres
) -> None:
    unknown = {i for i, g in genres.items() if "unknown" in g}  # 2 films
    body = (await client.get("/items/50/similar", params={"k": 10, "genres": "unknown"})).json()
    assert {i["id"] for i in body["items"]} == unknown
    assert body["shortfall"].startswith("only 2 items remain")


async def test_exclude_and_filters_apply_to_every_list(client, genres) -> None:
    plain = (await client.get("/recommendations/1", params={"k": 5})).json()
    first = plain["items"][0]["id"]
    params = {"k": 5, "exclude": f"{first},50"}
    for path in ("/recommendations/1", "/items/181/similar", "/recommendations/nobody"):
        ids = [i["id"] for i in (await client.get(path, params=params)).json()["items"]]
        assert len(ids) == 5 and not {first, "50"} & set(ids), path
    comedy = (await client.get("/recommendations/nobody", params={"genres": "Comedy"})).json()
    assert comedy["fallback"] is True
    assert all("Comedy" in genres[i["id"]] for i in comedy["items"])
    war_or_western = await client.get(
        "/recommendations/1", params=[("genres", "War"), ("genres", "Western"), ("k", "10")]
    )
    assert all(genres[i["id"]] & {"War", "Western"} for i in war_or_western.json()["items"])


async def test_item_routes_answer_metadata_and_404_for_an_unknown_item(client) -> None:
    found = (await client.get("/items", params={"ids": "1,50,not-an-item"})).json()
    assert [i["title"] for i in found["items"]] == ["Toy Story (1995)", "Star Wars (1977)"]
    assert found["unknown"] == ["not-an-item"]
    missing = await client.get("/items/not-an-item/similar")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    filters = (await client.get("/filters")).json()
    assert "Fantasy" in filters["genres"]
    users = (await client.get("/users", params={"limit": 3})).json()["users"]
    assert len(users) == 3
