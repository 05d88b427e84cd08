"""Acceptance on the version `recsys train` publishes (MovieLens, conftest's artifacts_dir):
the app's fast path (query side + precomputed item vectors, numpy ranking) serves what the
full pairs ranker exported beside it would, and an old-format version is refused."""

import json
import shutil
from pathlib import Path

import pytest

from app.artifacts import ArtifactError, load_live, load_version
from app.db.queries import UserProfile
from app.serving import RecommendRequest, recommend_batch
from app.version import ModelVersion
from tests.model.test_ranking import assert_fast_path_matches_the_full_ranker, full_ranker
from training import export
from training.catalog_files import read_interactions, read_items, read_users

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def version(artifacts_dir: Path) -> ModelVersion:
    return load_live(artifacts_dir)


def _rows(read, movielens) -> list:  # type: ignore[no-untyped-def]
    return [row for batch in read(movielens.config, movielens.folder) for row in batch]


def profile(movielens, user_id: str) -> UserProfile:  # type: ignore[no-untyped-def]
    """A MovieLens user as the app reads them: attributes, and all events newest first
    (time order, same-second events in file order, as the catalog config loads them)."""
    user = next(u for u in _rows(read_users, movielens) if u.id == user_id)
    events = [e for e in _rows(read_interactions, movielens) if e.user_id == user_id]
    events.sort(key=lambda e: (e.occurred_at, e.line), reverse=True)
    history = [e.item_id for e in events], [e.rating for e in events]
    return UserProfile(user_id, user.attributes, *history)


def test_served_lists_equal_the_full_ranker_on_movielens(
    artifacts_dir: Path, version: ModelVersion, movielens
) -> None:
    known, unseen = profile(movielens, "1"), profile(movielens, "900")  # 900: not trained on
    stranger = UserProfile("stranger", {}, ["50", "181"], [5.0, None])
    requests = [
        RecommendRequest(known, 10, known.history),
        RecommendRequest(unseen, 100, unseen.history),  # k = the ranker's candidates
        RecommendRequest(stranger, 10),
    ]
    items = {item.id: item.attributes for item in _rows(read_items, movielens)}
    full = full_ranker(artifacts_dir / version.version)
    served = assert_fast_path_matches_the_full_ranker(full, version, requests, items)
    assert [len(r.rows) for r in served] == [10, 100, 10]
    assert not set(served[0].item_ids(version)) & set(known.history)


def old_format_copy(folder: Path, into: Path) -> Path:
    """A copy of a version as the release before precomputed item vectors wrote it: no
    item_vectors/, no metadata.jsonl, no "serving" section (checksums still consistent)."""
    copy = into / folder.name
    shutil.copytree(folder, copy)
    shutil.rmtree(copy / "item_vectors")
    (copy / "metadata.jsonl").unlink()
    manifest = json.loads((copy / export.MANIFEST).read_text())
    del manifest["serving"]
    manifest["files"] = export.checksums(copy)
    export.write_json(copy / export.MANIFEST, manifest)
    return copy


def test_a_version_without_the_serving_section_is_refused(
    artifacts_dir: Path, version: ModelVersion, tmp_path: Path
) -> None:
    copy = old_format_copy(artifacts_dir / version.version, tmp_path)
    message = f"{copy / export.MANIFEST}: no 'serving' in the manifest.*run `recsys train`"
    with pytest.raises(ArtifactError, match=message):
        load_version(tmp_path, copy.name)


def test_a_search_split_over_threads_answers_as_one_thread_does(
    artifacts_dir: Path, version: ModelVersion, movielens
) -> None:
    """RECSYS_SERVING_SEARCH_THREADS only changes who does the work: the same batch gets
    the same lists, row for row and score for score."""
    threaded = load_live(artifacts_dir, search_threads=2)
    assert threaded.search_threads == 2 and version.search_threads == 1
    users = [profile(movielens, user_id) for user_id in ("1", "13", "405", "900", "655")]
    requests = [RecommendRequest(user, 10, user.history) for user in users]
    requests += [RecommendRequest(users[0], 100), RecommendRequest(users[1], 3, users[1].history)]
    alone, split = recommend_batch(version, requests), recommend_batch(threaded, requests)
    for one, other in zip(alone, split, strict=True):
        assert one.rows.tolist() == other.rows.tolist()
        assert one.scores == pytest.approx(other.scores, abs=1e-6)
    assert [len(r.rows) for r in split] == [10] * 5 + [100, 3]
