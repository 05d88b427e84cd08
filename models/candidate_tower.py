"""The candidate tower: an item's raw catalog fields -> candidate embedding."""

import tensorflow as tf

from models import features as F
from models.layers import FeatureEncoder, ItemIdEmbedding


class CandidateTower(tf.keras.Model):
    """Embeds an item from its id and each declared item feature (for MovieLens: genres,
    release year and title words).

    The content features give new or rarely seen items a useful place in the space even
    when their id embedding has barely been trained.
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
        self.item_embedding = item_embedding
        self.encoders = [FeatureEncoder(f, name=f"item_{f.name}") for f in contract.item_features]
        self.head = tf.keras.Sequential(
            [
                tf.keras.layers.Dense(hidden_dim, activation="relu"),
                tf.keras.layers.Dense(embedding_dim),
            ]
        )
        self.normalize = normalize

    def call(self, inputs: dict[str, tf.Tensor]) -> tf.Tensor:
        """Raw features, each [batch_size] -> [batch_size, embedding_dim]."""
        parts = [
            self.item_embedding(inputs[F.ITEM_ID]),
            *(encode(inputs[encode.feature.name]) for encode in self.encoders),
        ]
        embedding = self.head(tf.concat(parts, axis=1))
        return tf.math.l2_normalize(embedding, axis=1) if self.normalize else embedding
