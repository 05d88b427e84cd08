"""The artifact registry: find the live version, verify it, load it fully, hand it out.

A version is loaded completely (manifest, checksums, SavedModel, ScaNN index, id map)
before it becomes visible; the app holds one reference and swaps it in one assignment.
"""

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.db.queries import PROFILE_ATTRIBUTES

log = logging.getLogger(__name__)

LIVE_POINTER = "LIVE"
MANIFEST = "manifest.json"


class ArtifactError(RuntimeError):
    """No usable version: the message says which file and what to do."""


@dataclass(frozen=True)
class ModelVersion:
    version: str
    manifest: dict[str, Any]
    query_fn: Any  # the SavedModel's serving signature
    searcher: Any  # scann_ops_pybind.ScannSearcher
    item_ids: np.ndarray  # row in the index -> item id (str)
    popular: list[dict[str, Any]]
    inputs: dict[str, str]  # serving signature input name -> dtype
    history_feature: str
    history_length: int
    history_pad: str
    leaves: int  # ScaNN partitions; searching all of them is exhaustive
    reorder: int  # candidates ScaNN re-scores exactly; never ask for fewer
    reorder_multiplier: float = 1.0  # ... nor fewer than this many per requested result
    # Ratings parallel to the history (NaN where none); None for versions without it.
    history_ratings_feature: str | None = None
    # The second stage, when the version has one: pairs in, "score" and "rating" out.
    ranker_fn: Any = None
    ranking_candidates: int = 0  # retrieved items handed to the ranker per request
    candidate_features: dict[str, dict[str, str]] = field(default_factory=dict)  # raw, by id


def live_version_name(artifacts_dir: Path) -> str:
    pointer = artifacts_dir / LIVE_POINTER
    if not pointer.is_file():
        raise ArtifactError(
            f"no published model version in {artifacts_dir.resolve()} (missing {LIVE_POINTER}): "
            "run `recsys train` first"
        )
    return pointer.read_text().strip()


def load_version(artifacts_dir: Path, version: str, *, verify: bool = True) -> ModelVersion:
    folder = artifacts_dir / version
    manifest = _read_json(folder / MANIFEST)
    if verify:
        verify_checksums(folder, manifest.get("files", {}))
    try:
        spec = manifest["feature_spec"]
        inputs = {name: str(v["dtype"]) for name, v in spec["inputs"].items()}
        shape = (spec["signature"], spec["history_feature"], int(spec["history_length"]))
        leaves = int(manifest["index"]["num_leaves"])
        reorder = int(manifest["index"].get("reorder_num_neighbors", 0))
        multiplier = float(manifest["index"].get("reorder_multiplier", 1.0))
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(
            f"{folder / MANIFEST}: incomplete feature or index spec ({exc})"
        ) from None
    check_inputs(folder / MANIFEST, spec, ranked="ranker" in manifest)
    item_ids = np.array(_read_json(folder / "item_ids.json"), dtype=object)
    try:
        query_fn = _load_saved_model(folder / "query_tower", shape[0])
        searcher = _load_searcher(folder / "candidate_index")
        ranker = manifest.get("ranker")
        ranker_fn = _load_saved_model(folder / "ranker", shape[0]) if ranker else None
    except Exception as exc:  # TF and ScaNN raise many types for a damaged file
        raise ArtifactError(f"{folder}: cannot load model files: {exc}") from exc
    log.info("loaded model version %s (%d items)", version, len(item_ids))
    return ModelVersion(
        version=version,
        manifest=manifest,
        query_fn=query_fn,
        searcher=searcher,
        item_ids=item_ids,
        popular=_read_json(folder / "popular.json"),
        inputs=inputs,
        history_feature=shape[1],
        history_length=shape[2],
        history_pad=str(spec.get("history_pad", "")),
        history_ratings_feature=spec.get("history_ratings_feature"),
        leaves=leaves,
        reorder=reorder,
        reorder_multiplier=multiplier,
        ranker_fn=ranker_fn,
        ranking_candidates=int(ranker["candidates"]) if ranker else 0,
        candidate_features=_read_json(folder / "items.json") if ranker else {},
    )


def load_live(artifacts_dir: Path, *, verify: bool = True) -> ModelVersion:
    return load_version(artifacts_dir, live_version_name(artifacts_dir), verify=verify)


def check_inputs(manifest: Path, spec: dict[str, Any], *, ranked: bool) -> None:
    """Refuse, at load time, a version whose models need an input this app cannot build
    (a feature added after this app was released): better than failing every request."""
    query = {*PROFILE_ATTRIBUTES, spec["history_feature"], spec.get("history_ratings_feature")}
    needed = set(spec["inputs"])
    if ranked:
        query |= set(spec.get("candidate_features", []))
        needed |= set(spec.get("ranker_inputs", {}))
    unknown = sorted(needed - query)
    if unknown:
        raise ArtifactError(
            f"{manifest}: the models need inputs this app cannot build ({', '.join(unknown)}); "
            "serve this version with the app release that trained it, or a newer one"
        )


def verify_checksums(folder: Path, expected: dict[str, str]) -> None:
    if not expected:
        raise ArtifactError(f"{folder / MANIFEST}: lists no file checksums")
    for relative, digest in expected.items():
        path = folder / relative
        if not path.is_file():
            raise ArtifactError(f"{path}: listed in the manifest but missing")
        if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            raise ArtifactError(f"{path}: checksum does not match the manifest (corrupt file)")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{path}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: not valid JSON ({exc})") from None


def _load_saved_model(path: Path, signature: str) -> Any:
    import tensorflow as tf  # heavy: imported when a version is loaded, not with the app

    return tf.saved_model.load(str(path)).signatures[signature]


def _load_searcher(path: Path) -> Any:
    from scann import scann_ops_pybind

    return scann_ops_pybind.load_searcher(str(path))
