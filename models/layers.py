"""Small preprocessing + embedding layers shared by both towers."""

import tensorflow as tf

from models.features import HISTORY_PAD


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
