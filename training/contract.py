"""Build the feature contract (models/features.py) from the catalog config and its data:
what the config declares, with what only the data can tell (vocabularies, bucket edges)."""

import numpy as np
import tensorflow as tf

from app.catalog import FieldSpec, Kind
from models import features as F
from models.layers import year_of
from training.dataset import Catalog


def build_contract(catalog: Catalog, history_length: int) -> F.Contract:
    config = catalog.config
    return F.Contract(
        user_ids=catalog.user_ids.tolist(),
        item_ids=catalog.item_ids.tolist(),
        user_features=[_feature(s, catalog.users[s.name]) for s in config.user_features()],
        item_features=[_feature(s, catalog.items[s.name]) for s in config.item_features()],
        history_length=history_length,
    )


def _feature(spec: FieldSpec, values: np.ndarray) -> F.Feature:
    kind = spec.kind
    common = {"name": spec.name, "kind": kind, "separator": spec.separator, "prefix": spec.prefix}
    if kind in (Kind.categorical, Kind.multi_categorical):
        # A field with no value in the data still gets a (one-row) table: every value,
        # missing ones included, then shares it.
        vocabulary = _vocabulary(spec, values) or [""]
        return F.Feature(
            **common, dim=spec.dim or F.default_dim(len(vocabulary)), vocabulary=vocabulary
        )
    if kind in (Kind.numeric, Kind.date):
        numbers = values.astype(np.float64) if kind == Kind.numeric else _years(values)
        edges = spec.boundaries or _quantiles(numbers, spec.buckets)
        return F.Feature(**common, dim=spec.dim or F.default_dim(len(edges) + 2), boundaries=edges)
    corpus = ["" if v is None else str(v) for v in values.tolist()]
    if not any(corpus):  # a tokenizer adapted to nothing has no table to look up
        corpus = ["none"]
    return F.Feature(**common, dim=spec.dim or 16, max_tokens=spec.max_tokens, corpus=corpus)


def _vocabulary(spec: FieldSpec, values: np.ndarray) -> list[str]:
    present = [str(v) for v in values.tolist() if v is not None]
    if spec.kind == Kind.multi_categorical:
        return sorted({part for v in present for part in spec.values_of(v)})
    if spec.prefix:
        present = [v[: spec.prefix] for v in present]
    return sorted(set(present))


def _years(values: np.ndarray) -> np.ndarray:
    """The year the model reads from each stored date (NaN where none), computed by the
    model's own parser so training's bucket edges and serving agree."""
    strings = ["" if v is None else str(v) for v in values.tolist()]
    if not strings:
        return np.empty(0)
    return year_of(tf.constant(strings)).numpy().astype(np.float64)


def _quantiles(numbers: np.ndarray, buckets: int) -> list[float]:
    """Edges that split the known values into about `buckets` equally full buckets."""
    known = numbers[np.isfinite(numbers)]
    if len(known) == 0:
        return [0.0]
    edges = np.quantile(known, np.arange(1, buckets) / buckets)
    return [float(e) for e in np.unique(edges)]
