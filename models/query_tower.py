"""The query tower: a user's raw attributes and recent history -> query embedding."""

import tensorflow as tf

from models import features as F
from models.layers import CategoryEmbedding, FeatureEncoder, ItemIdEmbedding, masked_mean


class QueryTower(tf.keras.Model):
    """Embeds who the user is and what they did last, in the candidates' space.

    The user's id and each declared user feature (the contract's encoders) describe who;
    the history is pooled with a learned weight per position (most recent first), so the
    tower learns how fast interest decays, and the newest item also enters on its own.
    A catalog without user features learns from the id and the history alone.
    """

    def __init__(
        self,
        contract: F.Contract,
        item_embedding: ItemIdEmbedding,
        *,
        embedding_dim: int,
        hidden_dim: int,
        normalize: bool,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.contract = contract
        self.user_id = CategoryEmbedding(contract.user_ids, F.ID_DIMS[F.USER_ID])
        self.encoders = [FeatureEncoder(f, name=f"user_{f.name}") for f in contract.user_features]
        self.item_embedding = item_embedding
        self.position_logits = self.add_weight(
            name="history_position_logits",
            shape=(contract.history_length,),
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
        parts = [
            self.user_id(inputs[F.USER_ID]),
            *(encode(inputs[encode.feature.name]) for encode in self.encoders),
            masked_mean(history_vectors, weights),
            history_vectors[:, 0, :] * self.item_embedding.mask(history[:, 0])[:, None],
        ]
        embedding = self.head(tf.concat(parts, axis=1))
        return tf.math.l2_normalize(embedding, axis=1) if self.normalize else embedding
