"""The one feature contract: every feature key, vocabulary and embedding size.

Training builds its tf.data pipelines from these names, export writes the serving
signature from them, and the manifest carries `serving_spec()` so the app builds request
tensors without importing this package.
"""

from dataclasses import dataclass

import tensorflow as tf

# Query (user) features, as raw values: the exported model does every lookup itself.
USER_ID = "user_id"
AGE = "age"
GENDER = "gender"
OCCUPATION = "occupation"
ZIP_CODE = "zip_code"
HISTORY = "history"  # item ids, most recent first, padded with HISTORY_PAD
# The explicit rating of each HISTORY slot (same order), NaN where there is none: an
# event without a rating (a click) or a padding slot.
HISTORY_RATINGS = "history_ratings"

# Candidate (item) features.
ITEM_ID = "item_id"
GENRES = "genres"  # "Animation|Children's|Comedy"
RELEASE_DATE = "release_date"  # "01-Jan-1995"; the year is parsed inside the model
TITLE = "title"

# Training only: how often the example's item appears as a positive, for the in-batch
# softmax's sampling-bias (logQ) correction.
CANDIDATE_PROBABILITY = "candidate_probability"
# Training only: the explicit rating of the example (NaN when the event has none).
RATING = "rating"

QUERY_FEATURES = (USER_ID, AGE, GENDER, OCCUPATION, ZIP_CODE, HISTORY, HISTORY_RATINGS)
CANDIDATE_FEATURES = (ITEM_ID, GENRES, RELEASE_DATE, TITLE)

HISTORY_PAD = ""
GENRE_SEPARATOR = "|"
ZIP_PREFIX_LENGTH = 3
AGE_BOUNDARIES = [18.0, 25.0, 35.0, 45.0, 50.0, 56.0]
YEAR_BOUNDARIES = [float(y) for y in range(1930, 2001, 5)]
TITLE_MAX_TOKENS = 5000

# Embedding sizes of each input; the towers' output size is a training knob.
EMBEDDING_DIMS = {
    USER_ID: 32,
    AGE: 4,
    GENDER: 2,
    OCCUPATION: 8,
    ZIP_CODE: 8,
    ITEM_ID: 64,  # shared by the candidate tower and the history encoder
    GENRES: 16,
    RELEASE_DATE: 8,
    TITLE: 16,
}


@dataclass(frozen=True)
class Vocabularies:
    """Distinct raw values seen in the training data; anything else maps to an OOV bucket."""

    user_ids: list[str]
    item_ids: list[str]
    genders: list[str]
    occupations: list[str]
    zip_prefixes: list[str]
    genres: list[str]
    titles: list[str]  # the corpus the title tokenizer adapts to


def query_signature(history_length: int) -> dict[str, tf.TensorSpec]:
    """Input signature of the exported query tower: a batch of raw user features."""
    return {
        USER_ID: tf.TensorSpec([None], tf.string, name=USER_ID),
        AGE: tf.TensorSpec([None], tf.int64, name=AGE),
        GENDER: tf.TensorSpec([None], tf.string, name=GENDER),
        OCCUPATION: tf.TensorSpec([None], tf.string, name=OCCUPATION),
        ZIP_CODE: tf.TensorSpec([None], tf.string, name=ZIP_CODE),
        HISTORY: tf.TensorSpec([None, history_length], tf.string, name=HISTORY),
        HISTORY_RATINGS: tf.TensorSpec([None, history_length], tf.float32, name=HISTORY_RATINGS),
    }


def candidate_signature() -> dict[str, tf.TensorSpec]:
    """Raw item features, each [None]."""
    return {name: tf.TensorSpec([None], tf.string, name=name) for name in CANDIDATE_FEATURES}


def ranker_signature(history_length: int) -> dict[str, tf.TensorSpec]:
    """Input signature of the exported ranker: a batch of (user, candidate) pairs."""
    return {**query_signature(history_length), **candidate_signature()}


def _json_inputs(signature: dict[str, tf.TensorSpec]) -> dict:
    return {
        name: {"dtype": spec.dtype.name, "shape": spec.shape.as_list()}
        for name, spec in signature.items()
    }


def serving_spec(history_length: int) -> dict:
    """The signature as plain JSON for the manifest (the app reads this, not this module)."""
    return {
        "signature": "serving_default",
        "inputs": _json_inputs(query_signature(history_length)),
        "ranker_inputs": _json_inputs(ranker_signature(history_length)),
        "candidate_features": list(CANDIDATE_FEATURES),
        "output": "embedding",
        "history_feature": HISTORY,
        "history_length": history_length,
        "history_pad": HISTORY_PAD,
        # Filled from the same interactions as `history_feature`; missing ratings are NaN.
        "history_ratings_feature": HISTORY_RATINGS,
    }
