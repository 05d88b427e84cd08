"""The model registry in a real app: reload, refusal, fallback at start, admin, A/B split."""

import shutil
from pathlib import Path

import pytest
from pydantic import SecretStr

from app.manifest import MANIFEST, QUERY_TOWER
from app.settings import ArtifactSettings, DatabaseSettings, Settings
from app.store import Split, set_live, set_split
from tests.conftest import app_client
from training.bench.swap import clone_version

pytestmark = [pytest.mark.movielens, pytest.mark.model]
TOKEN = "s3cret-token"


@pytest.fixture
def store(artifacts_dir: Path, tmp_path: Path) -> tuple[Path, str]:
    """A private artifacts folder holding a copy of the trained version, live."""
    from app.store import live_name

    base = live_name(artifacts_dir)
    folder = tmp_path / "artifacts"
    folder.mkdir()
    shutil.copytree(artifacts_dir / base, folder / base)
    set_live(folder, base)
    return folder, base


def settings_for(folder: Path, database: str, token: str | None = TOKEN) -> Settings:
    return Settings(
        database=DatabaseSettings(url=database),
        artifacts=ArtifactSettings(dir=folder, poll_seconds=0),
        admin_token=SecretStr(token) if token else None,
    )


def corrupt(folder: Path) -> None:
    """Flip one byte of the SavedModel: the checksum no longer matches."""
    target = folder / QUERY_TOWER / "saved_model.pb"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))


async def health(client) -> dict:  # type: ignore[no-untyped-def]
    response = await client.get("/healthz")
    assert response.status_code == 200
    return response.json()


async def reload(client, token: str | None = TOKEN):  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await client.post("/admin/reload", headers=headers)


async def test_a_published_version_is_served_after_reload(store, loaded_database) -> None:
    folder, base = store
    async with app_client(settings_for(folder, loaded_database)) as client:
        assert (await health(client))["model_version"] == base
        new = clone_version(folder, folder / base, "v-next").name
        set_live(folder, new)
        answer = await reload(client)
        assert answer.status_code == 200, answer.text
        assert answer.json()["changed"] is True and answer.json()["model_version"] == new
        recs = (await client.get("/recommendations/1")).json()
        assert recs["model_version"] == new and len(recs["items"]) == 10
        again = (await reload(client)).json()
        assert again["changed"] is False and again["model_version"] == new


async def test_corrupt_and_half_written_versions_are_refused(store, loaded_database) -> None:
    folder, base = store
    async with app_client(settings_for(folder, loaded_database)) as client:
        corrupt(clone_version(folder, folder / base, "v-corrupt"))
        set_live(folder, "v-corrupt")
        refused = await reload(client)
        assert refused.status_code == 409
        assert "checksum does not match" in refused.json()["error"]["message"]
        assert (await client.get("/recommendations/1")).json()["model_version"] == base
        state = await health(client)
        assert state["status"] == "degraded" and state["live_pointer"] == "v-corrupt"
        assert [r["version"] for r in state["refused"]] == ["v-corrupt"]

        half = clone_version(folder, folder / base, "v-half")
        (half / "popular.json").unlink()  # named live before its last file arrived
        set_live(folder, "v-half")
        assert (await reload(client)).status_code == 409
        assert (await client.get("/recommendations/1")).json()["model_version"] == base
        shutil.copy(folder / base / "popular.json", half / "popular.json")  # now complete
        assert (await reload(client)).json()["model_version"] == "v-half"
        state = await health(client)
        assert state["status"] == "ok" and {r["version"] for r in state["refused"]} == {"v-corrupt"}


async def test_start_falls_back_to_the_previous_good_version(store, loaded_database) -> None:
    folder, base = store
    corrupt(clone_version(folder, folder / base, "v-newer"))
    set_live(folder, "v-newer")
    async with app_client(settings_for(folder, loaded_database)) as client:
        state = await health(client)
        assert state["model_version"] == base and state["live_pointer"] == "v-newer"
        assert state["status"] == "degraded" and "checksum" in state["refused"][0]["reason"]
        assert (await client.get("/recommendations/1")).json()["model_version"] == base


async def test_start_refuses_when_no_version_verifies(store, loaded_database) -> None:
    from app.store import ArtifactError

    folder, base = store
    corrupt(folder / base)
    with pytest.raises(ArtifactError, match="no model version .* can be served"):
        async with app_client(settings_for(folder, loaded_database)):
            pass


async def test_reload_needs_the_token_and_is_absent_without_one(store, loaded_database) -> None:
    folder, _ = store
    async with app_client(settings_for(folder, loaded_database)) as client:
        assert (await reload(client, token=None)).status_code == 401
        wrong = await reload(client, token="guess")
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        assert wrong.json()["error"]["code"] == "unauthorized"
        assert (await reload(client)).status_code == 200
    async with app_client(settings_for(folder, loaded_database, token=None)) as client:
        absent = await reload(client)
        assert absent.status_code == 404 and absent.json()["error"]["code"] == "not_found"


async def test_a_split_is_sticky_and_about_even(store, loaded_database) -> None:
    folder, base = store
    candidate = clone_version(folder, folder / base, "v-candidate").name
    set_split(folder, Split(candidate, 0.5))
    async with app_client(settings_for(folder, loaded_database)) as client:
        seen: dict[str, str] = {}
        for user in map(str, range(1, 944)):
            for _ in range(2):
                answer = (await client.get(f"/recommendations/{user}")).json()
                assert seen.setdefault(user, answer["model_version"]) == answer["model_version"]
        share = sum(v == candidate for v in seen.values()) / len(seen)
        assert 0.45 <= share <= 0.55, share
        assert set(seen.values()) == {base, candidate}
        state = await health(client)
        assert state["candidate_version"] == candidate and state["candidate_share"] == 0.5
        set_split(folder, None)
        assert (await reload(client)).json().get("candidate_version") is None
        assert (await client.get("/recommendations/1")).json()["model_version"] == base


def test_the_manifest_is_typed_and_shared(store) -> None:
    from app.manifest import read_manifest

    folder, base = store
    manifest = read_manifest(folder / base)
    assert manifest.version == base and (folder / base / MANIFEST).is_file()
    assert manifest.serving.item_vectors["embedding"].dim == manifest.embedding_dim
