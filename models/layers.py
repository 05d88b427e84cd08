"""Small preprocessing + embedding layers shared by both towers."""

import tensorflow as tf

from app.catalog import Kind
from models.features import HISTORY_PAD, Feature


def _strings(values: list[str]) -> tf.Tensor:
    """A vocabulary as one tensor. Given a Python list, the lookup layer keeps it as a
    tracked list, and saving a SavedModel walks every element of it: minutes at a million
    items (the same vocabulary, the same indices)."""
    return tf.constant(values, dtype=tf.string)


class CategoryEmbedding(tf.keras.layers.Layer):
    """Raw string category -> embedding; unseen values share one OOV row."""

    def __init__(self, vocabulary: list[str], dim: int, *, l2: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.lookup = tf.keras.layers.StringLookup(vocabulary=_strings(vocabulary), mask_token=None)
        regularizer = tf.keras.regularizers.l2(l2) if l2 else None
        self.embedding = tf.keras.layers.Embedding(
            self.lookup.vocabulary_size(), dim, embeddings_regularizer=regularizer
        )

    def call(self, values: tf.Tensor) -> tf.Tensor:
        """[batch_size] strings -> [batch_size, dim]."""
        return self.embedding(self.lookup(values))


class FeatureEncoder(tf.keras.layers.Layer):
    """One declared feature's raw values -> [batch_size, dim], by its kind:

    - categorical: lookup (optionally of a prefix) and embedding; unseen values share an
      OOV row;
    - multi_categorical: split on the separator, embed each value, average;
    - numeric, date (its year): bucketed by the contract's edges, embedded; a missing
      value (NaN, or no year found) has a bucket of its own;
    - text: tokenised (a vocabulary adapted to the training corpus), embedded, averaged.
    """

    def __init__(self, feature: Feature, **kwargs):
        super().__init__(**kwargs)
        self.feature = feature
        kind = feature.kind
        if kind in (Kind.categorical, Kind.multi_categorical):
            self.lookup = tf.keras.layers.StringLookup(
                vocabulary=_strings(feature.vocabulary), mask_token=None
            )
            size = self.lookup.vocabulary_size()
        elif kind in (Kind.numeric, Kind.date):
            self.buckets = tf.keras.layers.Discretization(bin_boundaries=feature.boundaries)
            size = len(feature.boundaries) + 2  # + the missing bucket
        else:
            self.tokens = tf.keras.layers.TextVectorization(max_tokens=feature.max_tokens)
            self.tokens.adapt(tf.constant(feature.corpus or [""]))
            size = feature.max_tokens
        self.embedding = tf.keras.layers.Embedding(size, feature.dim)

    def call(self, values: tf.Tensor) -> tf.Tensor:
        """[batch_size] raw values (strings; float32 for numeric) -> [batch_size, dim]."""
        kind = self.feature.kind
        if kind == Kind.categorical:
            if self.feature.prefix:
                values = tf.strings.substr(values, 0, self.feature.prefix)
            return self.embedding(self.lookup(values))
        if kind == Kind.multi_categorical:
            # Stripped as the vocabulary's values were: "kitchen; gift" holds "gift".
            parts = tf.strings.strip(tf.strings.split(values, sep=self.feature.separator))
            vectors = tf.ragged.map_flat_values(lambda v: self.embedding(self.lookup(v)), parts)
            count = tf.maximum(tf.cast(parts.row_lengths(), tf.float32), 1.0)[:, None]
            return tf.reduce_sum(vectors, axis=1) / count
        if kind in (Kind.numeric, Kind.date):
            number = year_of(values) if kind == Kind.date else tf.cast(values, tf.float32)
            missing = tf.math.is_nan(number)
            bucket = self.buckets(tf.where(missing, 0.0, number)) + 1
            return self.embedding(tf.where(missing, tf.zeros_like(bucket), bucket))
        tokens = self.tokens(values)  # [batch_size, words], 0 = padding
        return masked_mean(self.embedding(tokens), tf.cast(tf.not_equal(tokens, 0), tf.float32))


# A year: four digits not part of a longer number ("01-Jan-1995", "2009-06-15", "1995").
_YEAR = r"^(?:.*?[^0-9])?([0-9]{4})(?:[^0-9].*)?$"
_UNIX = r"[0-9]{9,}(?:\.[0-9]*)?"  # seconds since 1970


def year_of(values: tf.Tensor) -> tf.Tensor:
    """[batch_size] dates as strings -> [batch_size] float years, NaN when none is found.
    Unix timestamps (nine or more digits) count as seconds since 1970 (UTC)."""
    has_year = tf.strings.regex_full_match(values, _YEAR)
    year = tf.strings.to_number(
        tf.where(has_year, tf.strings.regex_replace(values, _YEAR, r"\1"), "0"), tf.float32
    )
    is_unix = tf.strings.regex_full_match(values, _UNIX)
    seconds = tf.strings.to_number(tf.where(is_unix, values, "0"), tf.float64)
    unix_year = tf.cast(_civil_year(tf.cast(tf.floor(seconds / 86400.0), tf.int64)), tf.float32)
    nan = tf.fill(tf.shape(year), float("nan"))
    return tf.where(is_unix, unix_year, tf.where(has_year, year, nan))


def _civil_year(days: tf.Tensor) -> tf.Tensor:
    """The Gregorian year of days since 1970-01-01 (H. Hinnant's civil_from_days), so a
    timestamp at midnight on New Year's Day is in the new year, as its date string is."""
    z = days + 719468
    era = tf.math.floordiv(z, 146097)
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    month_from_march = (5 * doy + 2) // 153
    return yoe + era * 400 + tf.cast(month_from_march >= 10, tf.int64)


class ItemIdEmbedding(tf.keras.layers.Layer):
    """Item id -> embedding, shared by candidates and histories; HISTORY_PAD is masked."""

    def __init__(self, item_ids: list[str], dim: int, **kwargs):
        super().__init__(**kwargs)
        self.lookup = tf.keras.layers.StringLookup(
            vocabulary=_strings(item_ids), mask_token=HISTORY_PAD
        )
        self.embedding = tf.keras.layers.Embedding(self.lookup.vocabulary_size(), dim)

    def call(self, ids: tf.Tensor) -> tf.Tensor:
        """[...] strings -> [..., dim]."""
        return self.embedding(self.lookup(ids))

    def mask(self, ids: tf.Tensor) -> tf.Tensor:
        """[...] strings -> [...] float, 0.0 where the slot is padding."""
        return tf.cast(tf.not_equal(ids, HISTORY_PAD), tf.float32)


def masked_mean(vectors: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """[batch, n, dim] and [batch, n] weights -> [batch, dim]; all-zero weights give zeros."""
    total = tf.reduce_sum(vectors * weights[..., None], axis=1)
    return total / tf.maximum(tf.reduce_sum(weights, axis=1, keepdims=True), 1e-6)


class RatingHistorySummary(tf.keras.layers.Layer):
    """A user's recent explicit ratings -> a few numbers about how they rate right now.

    Ratings drift: the stars a user gave lately predict the next one better than their
    all-time bias alone. Input [batch_size, history_length] ratings, most recent first,
    NaN where there is none; output [batch_size, 5]: the mean, a mean shrunk towards the
    global mean (`prior` pseudo-ratings), the newest rating and the mean of the `recent`
    newest, each as stars above `mean` (0 when unknown), and log(1 + count).
    """

    width = 5  # numbers per user

    def __init__(self, mean: float, *, recent: int = 5, prior: float = 3.0, **kwargs):
        super().__init__(**kwargs)
        self.mean, self.recent, self.prior = mean, recent, prior

    def call(self, ratings: tf.Tensor) -> tf.Tensor:
        known = tf.logical_not(tf.math.is_nan(ratings))
        weights = tf.cast(known, tf.float32)
        above = tf.where(known, ratings - self.mean, 0.0)
        count = tf.reduce_sum(weights, axis=1, keepdims=True)
        total = tf.reduce_sum(above, axis=1, keepdims=True)
        recent_count = tf.reduce_sum(weights[:, : self.recent], axis=1, keepdims=True)
        recent_total = tf.reduce_sum(above[:, : self.recent], axis=1, keepdims=True)
        return tf.concat(
            [
                total / tf.maximum(count, 1.0),
                total / (count + self.prior),
                above[:, :1],
                recent_total / tf.maximum(recent_count, 1.0),
                tf.math.log1p(count),
            ],
            axis=1,
        )
