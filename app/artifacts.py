"""Load a published version: find it, verify it, load it fully, then hand it out.

A version is loaded completely (manifest, checksums, SavedModel, ScaNN index, item
vectors, metadata) before it becomes visible; the app holds one reference and swaps it in
one assignment.
"""

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from app.filters import ItemFilters
from app.manifest import (
    CANDIDATE_INDEX,
    ITEM_IDS,
    MANIFEST,
    POPULAR,
    QUERY_TOWER,
    RATING_SIGNATURE,
    SIGNATURES,
    FeatureSpec,
    Manifest,
    ManifestError,
    read_manifest,
)
from app.signatures import Signature, load_signatures
from app.store import ArtifactError, live_name
from app.version import ItemMetadata, ModelVersion, Ranking

log = logging.getLogger(__name__)


def load_live(artifacts_dir: Path, *, verify: bool = True, search_threads: int = 1) -> ModelVersion:
    name = live_name(artifacts_dir)
    return load_version(artifacts_dir, name, verify=verify, search_threads=search_threads)


def load_version(
    artifacts_dir: Path, version: str, *, verify: bool = True, search_threads: int = 1
) -> ModelVersion:
    """Load one version completely, checking it fits together; ArtifactError says why not.
    `search_threads`: how many threads its batched ScaNN searches may use."""
    folder = artifacts_dir / version
    manifest = _manifest(folder)
    if verify:
        verify_checksums(folder, manifest.files)
    spec = manifest.feature_spec
    check_inputs(folder / MANIFEST, spec)
    item_ids = np.array(_read_json(folder / ITEM_IDS), dtype=object)
    try:
        query = load_signatures(folder / QUERY_TOWER)
        check_signatures(folder, manifest, query)
        searcher = _load_searcher(folder / CANDIDATE_INDEX, search_threads)
        vectors = {
            name: _vectors(folder, spec.file, len(item_ids))
            for name, spec in manifest.serving.item_vectors.items()
        }
        check_dimensions(folder, manifest, query, vectors)
        ranking = _ranking(manifest, query, vectors)
    except ArtifactError:
        raise
    except Exception as exc:  # TF, ScaNN and numpy raise many types for a damaged file
        raise ArtifactError(f"{folder}: cannot load model files: {exc}") from exc
    metadata = ItemMetadata((folder / manifest.serving.metadata).read_bytes())
    if len(metadata) != len(item_ids):
        raise ArtifactError(
            f"{folder / manifest.serving.metadata}: {len(metadata)} rows, expected {len(item_ids)}"
        )
    log.info("loaded model version %s (%d items)", version, len(item_ids))
    return ModelVersion(
        version=version,
        manifest=manifest,
        query_fn=query["serving_default"],
        searcher=searcher,
        item_ids=item_ids,
        popular=_read_json(folder / POPULAR),
        inputs={name: v.dtype for name, v in spec.inputs.items()},
        history_feature=spec.history_feature,
        history_length=spec.history_length,
        history_pad=spec.history_pad,
        history_ratings_feature=spec.history_ratings_feature,
        user_id_feature=spec.user_id_feature,
        leaves=manifest.index.num_leaves,
        leaves_to_search=manifest.index.leaves_to_search,
        exact=manifest.index.mode == "brute_force",
        search_threads=search_threads,
        reorder=manifest.index.reorder_num_neighbors,
        reorder_multiplier=manifest.index.reorder_multiplier or 1.0,
        ranking=ranking,
        metadata=metadata,
        row_of={item: row for row, item in enumerate(item_ids.tolist())},
        item_embeddings=vectors.get("embedding"),
        filters=_filters(folder, manifest),
    )


def _filters(folder: Path, manifest: Manifest) -> ItemFilters | None:
    relative = manifest.serving.filters
    if relative is None:
        return None
    try:
        return ItemFilters.read(folder / relative)
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{folder / relative}: cannot read the filters ({exc})") from None


def _manifest(folder: Path) -> Manifest:
    try:
        return read_manifest(folder)
    except ManifestError as exc:
        raise ArtifactError(
            f"{exc}; a version exported by an older release (before precomputed item "
            "vectors) or a damaged one cannot be served: run `recsys train` to export a new one"
        ) from None


def check_signatures(folder: Path, manifest: Manifest, query: dict[str, Signature]) -> None:
    needed = {*SIGNATURES, *([RATING_SIGNATURE] if manifest.ranker else [])}
    missing = sorted(needed - set(query))
    if missing:
        raise ArtifactError(f"{folder / QUERY_TOWER}: no signature {', '.join(missing)}")


def check_dimensions(
    folder: Path, manifest: Manifest, query: dict[str, Signature], vectors: dict[str, np.ndarray]
) -> None:
    """The query tower's outputs must match the item vectors they are dotted with (and the
    index, built from the `embedding` vectors): a mismatch would fail every request."""
    outputs = query["serving_default"].output_sizes
    for name, spec in manifest.serving.item_vectors.items():
        if vectors[name].shape[1] != spec.dim:
            raise ArtifactError(
                f"{folder / spec.file}: {vectors[name].shape[1]} columns, manifest says {spec.dim}"
            )
        if name in outputs and outputs[name] != spec.dim:
            raise ArtifactError(
                f"{folder / QUERY_TOWER}: output {name!r} has size {outputs[name]}, "
                f"the item vectors {spec.dim}"
            )


def _ranking(
    manifest: Manifest, query: dict[str, Signature], vectors: dict[str, np.ndarray]
) -> Ranking | None:
    ranker = manifest.ranker
    if ranker is None:
        return None
    blend = ranker.rating_blend
    return Ranking(
        candidates=ranker.candidates,
        item_vectors=vectors["ranking"],
        rating_blend=blend,
        rating_mean=ranker.rating_mean,
        # The rating head crosses user and item: called only when the score reads it.
        rating_fn=query[RATING_SIGNATURE] if blend else None,
        rating_items=vectors["rating_item"] if blend else None,
    )


def _vectors(folder: Path, relative: str, items: int) -> np.ndarray:
    # Memory-mapped: several workers on one host share the page cache, not copies.
    vectors = np.load(folder / relative, mmap_mode="r")
    if vectors.ndim != 2 or len(vectors) != items:
        raise ArtifactError(f"{folder / relative}: shape {vectors.shape}, expected {items} rows")
    return np.asarray(vectors)  # a plain view of the mapping: no memmap subclass per slice


def check_inputs(manifest: Path, spec: FeatureSpec) -> None:
    """Refuse, at load time, a version whose query side needs an input this app cannot
    build (of a type it does not know, or named neither a user attribute nor one of the
    inputs it fills itself): better than failing every request."""
    own = {spec.user_id_feature, spec.history_feature, spec.history_ratings_feature}
    attributes = spec.user_attributes
    unknown = sorted(
        name
        for name, tensor in spec.inputs.items()
        if not _buildable(tensor.dtype)
        or (attributes is not None and name not in own and name not in attributes)
    )
    if unknown:
        raise ArtifactError(
            f"{manifest}: the models need inputs this app cannot build ({', '.join(unknown)}); "
            "serve this version with the app release that trained it, or a newer one"
        )


def _buildable(dtype: str) -> bool:
    return dtype == "string" or dtype.startswith(("float", "int"))


def verify_checksums(folder: Path, expected: dict[str, str]) -> None:
    if not expected:
        raise ArtifactError(f"{folder / MANIFEST}: lists no file checksums")
    for relative, digest in expected.items():
        path = folder / relative
        if not path.is_file():
            raise ArtifactError(f"{path}: listed in the manifest but missing")
        if _sha256(path) != digest:
            raise ArtifactError(f"{path}: checksum does not match the manifest (corrupt file)")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{path}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: not valid JSON ({exc})") from None


def _load_searcher(path: Path, threads: int) -> Any:
    from scann import scann_ops_pybind

    searcher = scann_ops_pybind.load_searcher(str(path))
    if threads > 1:
        searcher.set_num_threads(threads)
    return searcher


def configure_tensorflow(intra_op: int, inter_op: int) -> None:
    """Size TensorFlow's thread pools; only possible before its runtime starts, so a
    second app in the same process (tests) keeps the first one's setting."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError:
        log.debug("TensorFlow already initialised; thread pools left as they are")
