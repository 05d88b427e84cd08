"""The candidate tower: an item's raw catalog fields -> candidate embedding."""

import tensorflow as tf

from models import features as F
from models.layers import CategoryEmbedding, ItemIdEmbedding, masked_mean


class CandidateTower(tf.keras.Model):
    """Embeds an item from its id, genres, release year and title words.

    The content features give new or rarely seen items a useful place in the space even
    when their id embedding has barely been trained.
    """

    def __init__(
        self,
        vocab: F.Vocabularies,
        item_embedding: ItemIdEmbedding,
        *,
        embedding_dim: int,
        hidden_dim: int,
        normalize: bool,
        **kwargs,
    ):
        super().__init__(**kwargs)
        dims = F.EMBEDDING_DIMS
        self.item_embedding = item_embedding
        self.genre = CategoryEmbedding(vocab.genres, dims[F.GENRES])
        self.year = tf.keras.Sequential(
            [
                tf.keras.layers.Discretization(bin_boundaries=F.YEAR_BOUNDARIES),
                tf.keras.layers.Embedding(len(F.YEAR_BOUNDARIES) + 1, dims[F.RELEASE_DATE]),
            ]
        )
        self.title_tokens = tf.keras.layers.TextVectorization(max_tokens=F.TITLE_MAX_TOKENS)
        self.title_tokens.adapt(tf.constant(vocab.titles or [""]))
        self.title_embedding = tf.keras.layers.Embedding(F.TITLE_MAX_TOKENS, dims[F.TITLE])
        self.head = tf.keras.Sequential(
            [
                tf.keras.layers.Dense(hidden_dim, activation="relu"),
                tf.keras.layers.Dense(embedding_dim),
            ]
        )
        self.normalize = normalize

    def call(self, inputs: dict[str, tf.Tensor]) -> tf.Tensor:
        """Raw features, each [batch_size] -> [batch_size, embedding_dim]."""
        genres = tf.strings.split(inputs[F.GENRES], sep=F.GENRE_SEPARATOR)
        genre_vectors = tf.ragged.map_flat_values(self.genre, genres)
        tokens = self.title_tokens(inputs[F.TITLE])  # [batch_size, words], 0 = padding
        title_weights = tf.cast(tf.not_equal(tokens, 0), tf.float32)
        parts = [
            self.item_embedding(inputs[F.ITEM_ID]),
            tf.reduce_sum(genre_vectors, axis=1)
            / tf.maximum(tf.cast(genres.row_lengths(), tf.float32), 1.0)[:, None],
            self.year(release_year(inputs[F.RELEASE_DATE])),
            masked_mean(self.title_embedding(tokens), title_weights),
        ]
        embedding = self.head(tf.concat(parts, axis=1))
        return tf.math.l2_normalize(embedding, axis=1) if self.normalize else embedding


def release_year(dates: tf.Tensor) -> tf.Tensor:
    """[batch_size] "01-Jan-1995" strings -> [batch_size] float years (0 when unknown)."""
    has_year = tf.strings.regex_full_match(dates, r".*[0-9]{4}")
    digits = tf.strings.regex_replace(dates, r"^.*([0-9]{4})$", r"\1")
    return tf.strings.to_number(tf.where(has_year, digits, "0"), out_type=tf.float32)
