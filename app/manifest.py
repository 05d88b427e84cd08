"""The published artifact format, in one place for the exporter (training/) and the
loader (app/): the files of a version folder, the pointers beside them, and the manifest
as a typed model that the exporter writes and the loader reads.

    ARTIFACTS_DIR/
      LIVE                 the live version's name (replaced atomically)
      SPLIT                optional A/B split: {"candidate": VERSION, "share": 0.1}
      VERSION/             one published version, never changed after publishing
        manifest.json      Manifest below; `files` holds every other file's sha256
        query_tower/ candidate_index/ item_vectors/ metadata.jsonl item_ids.json popular.json
"""

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.catalog import CatalogConfig

LIVE_POINTER = "LIVE"
SPLIT_FILE = "SPLIT"
MANIFEST = "manifest.json"
STAGING_PREFIX = ".staging-"
QUERY_TOWER = "query_tower"
ITEM_TOWER = "item_tower"  # the item side's SavedModel: run at export, never loaded to serve
CANDIDATE_INDEX = "candidate_index"
ITEM_VECTORS = "item_vectors"
METADATA = "metadata.jsonl"
CURVES = "training_curves.png"  # loss and validation metrics per epoch, both stages
TENSORBOARD = "tensorboard"  # the training run's TensorBoard logs
FILTERS = "filters.json"  # categorical item field -> value -> index rows (business filters)
ITEM_IDS = "item_ids.json"
POPULAR = "popular.json"
RANKER = "ranker"
# Signatures of the query-side SavedModel the app calls: always these, `rating` with a
# ranker. (Versions exported before the item tower had its own SavedModel also hold
# `items` here; the app never calls it.)
SIGNATURES = ("serving_default",)
RATING_SIGNATURE = "rating"


class _Section(BaseModel):
    # A newer exporter may add fields; an older app ignores what it does not read.
    model_config = ConfigDict(extra="allow")


class TensorInput(_Section):
    dtype: str
    shape: list[int | None]


class FeatureSpec(_Section):
    signature: str = "serving_default"
    inputs: dict[str, TensorInput]
    ranker_inputs: dict[str, TensorInput] = {}
    candidate_features: list[str] = []
    output: str = "embedding"
    history_feature: str
    history_length: int = Field(ge=1)
    history_pad: str = ""
    # Ratings parallel to the history (NaN where none); absent in older versions.
    history_ratings_feature: str | None = None
    user_id_feature: str = "user_id"
    # Inputs filled from the stored user attributes of the same name. None (versions
    # before the catalog contract): every input that is not one of the above.
    user_attributes: list[str] | None = None


class IndexInfo(_Section):
    items: int = Field(ge=1)
    mode: str
    num_leaves: int = Field(default=1, ge=1)  # 1: nothing to widen a search over
    leaves_to_search: int | None = None
    reorder_num_neighbors: int = Field(default=0, ge=0)
    reorder_multiplier: float | None = None


class VectorFile(_Section):
    file: str
    dim: int = Field(ge=1)


class ServingSpec(_Section):
    signatures: list[str]
    item_vectors: dict[str, VectorFile]
    metadata: str = METADATA
    filters: str | None = None  # None: exported before business filters


class RankerSpec(_Section):
    candidates: int = Field(ge=1)
    outputs: list[str] = ["score", "rating"]
    # score = ranking . item ranking + rating_blend * (rating - rating_mean)
    rating_blend: float = 0.0
    rating_mean: float = 0.0


class Manifest(_Section):
    version: str
    created_at: str
    data_fingerprint: str = ""
    row_counts: dict[str, int] = {}
    embedding_dim: int = Field(ge=1)
    feature_spec: FeatureSpec
    # The catalog the version was trained on (None: exported before the catalog contract,
    # i.e. MovieLens 100K): its metadata and user fields are what the API answers with.
    catalog: CatalogConfig | None = None
    index: IndexInfo
    serving: ServingSpec
    ranker: RankerSpec | None = None
    train_config: dict[str, Any] = {}
    library_versions: dict[str, str] = {}
    git_commit: str | None = None
    evaluation: dict[str, Any] | None = None
    files: dict[str, str] = {}  # relative path -> sha256, every file but the manifest

    def write(self, folder: Path) -> None:
        text = self.model_dump_json(indent=2, exclude_none=True)
        (folder / MANIFEST).write_text(text + "\n")

    def served_metric(self, name: str) -> float | None:
        """A metric of the served pipeline from the training run's evaluation, if any."""
        served = ((self.evaluation or {}).get("metrics") or {}).get("served") or {}
        value = served.get(name)
        return float(value) if isinstance(value, int | float) else None


class ManifestError(ValueError):
    """The manifest is missing, not JSON, or not a manifest this app can read."""


def read_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise ManifestError(f"{path}: missing") from None
    except ValidationError as exc:
        raise ManifestError(f"{path}: {_describe(exc)}") from None


def _describe(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    if any(e["type"] == "json_invalid" for e in errors):
        return f"not valid JSON ({errors[0]['msg']})"
    missing = [".".join(map(str, e["loc"])) for e in errors if e["type"] == "missing"]
    if missing:
        return "no " + ", ".join(repr(m) for m in missing) + " in the manifest"
    first = errors[0]
    return f"malformed manifest ({'.'.join(map(str, first['loc']))}: {first['msg']})"
