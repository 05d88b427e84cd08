"""The query tower: a user's raw attributes and recent history -> query embedding."""

import tensorflow as tf

from models import features as F
from models.layers import CategoryEmbedding, ItemIdEmbedding, masked_mean


class QueryTower(tf.keras.Model):
    """Embeds who the user is and what they did last, in the candidates' space.

    History is pooled with a learned weight per position (most recent first), so the
    tower learns how fast interest decays; the newest item also enters on its own.
    """

    def __init__(
        self,
        vocab: F.Vocabularies,
        item_embedding: ItemIdEmbedding,
        *,
        history_length: int,
        embedding_dim: int,
        hidden_dim: int,
        normalize: bool,
        **kwargs,
    ):
        super().__init__(**kwargs)
        dims = F.EMBEDDING_DIMS
        self.user_id = CategoryEmbedding(vocab.user_ids, dims[F.USER_ID])
        self.gender = CategoryEmbedding(vocab.genders, dims[F.GENDER])
        self.occupation = CategoryEmbedding(vocab.occupations, dims[F.OCCUPATION])
        self.zip_prefix = CategoryEmbedding(vocab.zip_prefixes, dims[F.ZIP_CODE])
        self.age = tf.keras.Sequential(
            [
                tf.keras.layers.Discretization(bin_boundaries=F.AGE_BOUNDARIES),
                tf.keras.layers.Embedding(len(F.AGE_BOUNDARIES) + 1, dims[F.AGE]),
            ]
        )
        self.item_embedding = item_embedding
        self.position_logits = self.add_weight(
            name="history_position_logits",
            shape=(history_length,),
            initializer=tf.keras.initializers.Constant(0.5),
        )
        self.head = tf.keras.Sequential(
            [
                tf.keras.layers.Dense(hidden_dim, activation="relu"),
                tf.keras.layers.Dense(embedding_dim),
            ]
        )
        self.normalize = normalize

    def call(self, inputs: dict[str, tf.Tensor]) -> tf.Tensor:
        """Raw features ([batch_size], history [batch_size, history_length]) ->
        [batch_size, embedding_dim]."""
        history = inputs[F.HISTORY]
        history_vectors = self.item_embedding(history)
        weights = self.item_embedding.mask(history) * tf.nn.softplus(self.position_logits)
        zip_prefix = tf.strings.substr(inputs[F.ZIP_CODE], 0, F.ZIP_PREFIX_LENGTH)
        parts = [
            self.user_id(inputs[F.USER_ID]),
            self.age(tf.cast(inputs[F.AGE], tf.float32)),
            self.gender(inputs[F.GENDER]),
            self.occupation(inputs[F.OCCUPATION]),
            self.zip_prefix(zip_prefix),
            masked_mean(history_vectors, weights),
            history_vectors[:, 0, :] * self.item_embedding.mask(history[:, 0])[:, None],
        ]
        embedding = self.head(tf.concat(parts, axis=1))
        return tf.math.l2_normalize(embedding, axis=1) if self.normalize else embedding
