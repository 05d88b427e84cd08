"""The one feature contract: every model input's name, kind, vocabulary and embedding size.

It is built once per training run from the catalog config (app/catalog.py: which fields
exist, their kinds and options) and the training data (vocabularies, bucket edges).
Training builds its tf.data batches with these names, the towers build one encoder per
feature from it, export writes the serving signatures from it, and the manifest carries
`serving_spec()` so the app builds request tensors without importing this package.
"""

from dataclasses import dataclass, field

import tensorflow as tf

from app.catalog import Kind

# The inputs every catalog has, whatever it declares.
USER_ID = "user_id"
HISTORY = "history"  # item ids, most recent first, padded with HISTORY_PAD
# The explicit rating of each HISTORY slot (same order), NaN where there is none: an
# event without a rating (a click) or a padding slot.
HISTORY_RATINGS = "history_ratings"
ITEM_ID = "item_id"

# Training only: how often the example's item appears as a positive, for the in-batch
# softmax's sampling-bias (logQ) correction.
CANDIDATE_PROBABILITY = "candidate_probability"
# Training only: the explicit rating of the example (NaN when the event has none).
RATING = "rating"

HISTORY_PAD = ""
ID_DIMS = {USER_ID: 32, ITEM_ID: 64}  # the item id embedding is shared with the history


@dataclass(frozen=True)
class Feature:
    """One declared user or item field the towers read, with what training learned of it."""

    name: str
    kind: Kind
    dim: int
    vocabulary: list[str] = field(default_factory=list)  # categorical, multi-valued
    boundaries: list[float] = field(default_factory=list)  # numeric, date (years)
    separator: str = "|"
    prefix: int | None = None
    max_tokens: int = 5000
    corpus: list[str] = field(default_factory=list)  # text: what the tokenizer adapts to

    @property
    def dtype(self) -> tf.DType:
        """Raw input type: numbers as float32 (NaN when missing), everything else strings."""
        return tf.float32 if self.kind == Kind.numeric else tf.string


@dataclass(frozen=True)
class Contract:
    """Ids, the declared features of each side and the history length: all the towers,
    the training batches and the serving signatures are built from."""

    user_ids: list[str]
    item_ids: list[str]
    user_features: list[Feature]
    item_features: list[Feature]
    history_length: int

    @property
    def query_features(self) -> tuple[str, ...]:
        return (USER_ID, *(f.name for f in self.user_features), HISTORY, HISTORY_RATINGS)

    @property
    def candidate_features(self) -> tuple[str, ...]:
        return (ITEM_ID, *(f.name for f in self.item_features))

    def query_signature(self) -> dict[str, tf.TensorSpec]:
        """Input signature of the exported query tower: a batch of raw user features."""
        length = self.history_length
        return {
            USER_ID: tf.TensorSpec([None], tf.string, name=USER_ID),
            **{f.name: tf.TensorSpec([None], f.dtype, name=f.name) for f in self.user_features},
            HISTORY: tf.TensorSpec([None, length], tf.string, name=HISTORY),
            HISTORY_RATINGS: tf.TensorSpec([None, length], tf.float32, name=HISTORY_RATINGS),
        }

    def candidate_signature(self) -> dict[str, tf.TensorSpec]:
        """Raw item features, each [None]."""
        return {
            ITEM_ID: tf.TensorSpec([None], tf.string, name=ITEM_ID),
            **{f.name: tf.TensorSpec([None], f.dtype, name=f.name) for f in self.item_features},
        }

    def ranker_signature(self) -> dict[str, tf.TensorSpec]:
        """Input signature of the exported ranker: a batch of (user, candidate) pairs."""
        return {**self.query_signature(), **self.candidate_signature()}

    def serving_spec(self) -> dict:
        """The signature as plain JSON for the manifest (the app reads this, not this module)."""
        return {
            "signature": "serving_default",
            "inputs": _json_inputs(self.query_signature()),
            "ranker_inputs": _json_inputs(self.ranker_signature()),
            "candidate_features": list(self.candidate_features),
            "output": "embedding",
            "history_feature": HISTORY,
            "history_length": self.history_length,
            "history_pad": HISTORY_PAD,
            # Filled from the same interactions as `history_feature`; missing ratings are NaN.
            "history_ratings_feature": HISTORY_RATINGS,
            "user_id_feature": USER_ID,
            # Inputs the app fills from the stored user attributes of the same name.
            "user_attributes": [f.name for f in self.user_features],
        }


def _json_inputs(signature: dict[str, tf.TensorSpec]) -> dict:
    return {
        name: {"dtype": spec.dtype.name, "shape": spec.shape.as_list()}
        for name, spec in signature.items()
    }


def default_dim(vocabulary_size: int) -> int:
    """Embedding size for a vocabulary when the config gives none: the usual fourth-root
    rule of thumb (about 6 * n^0.25), between 2 and 64."""
    return max(2, min(64, round(6 * max(vocabulary_size, 1) ** 0.25)))
