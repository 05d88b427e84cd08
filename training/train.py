"""Fit the two-tower model on the training split."""

import sys

import numpy as np
import tensorflow as tf

from models import features as F
from models.ranking import RankingModel
from models.retrieval import TwoTowerModel
from training.config import TrainConfig


def build_model(vocab: F.Vocabularies, config: TrainConfig) -> TwoTowerModel:
    model = TwoTowerModel(
        vocab,
        history_length=config.history_length,
        embedding_dim=config.embedding_dim,
        hidden_dim=config.hidden_dim,
        temperature=config.temperature,
        normalize=config.normalize,
        logq_correction=config.logq_correction,
    )
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=config.learning_rate))
    return model


def build_ranker(
    vocab: F.Vocabularies,
    config: TrainConfig,
    rating_mean: float,
    retrieval: TwoTowerModel | None = None,
) -> RankingModel:
    ranker = config.ranker
    model = RankingModel(
        vocab,
        history_length=config.history_length,
        embedding_dim=ranker.embedding_dim,
        hidden_dim=ranker.hidden_dim,
        temperature=ranker.temperature,
        use_cross=ranker.use_cross,
        relevance_weight=ranker.relevance_weight,
        rating_weight=ranker.rating_weight,
        rating_blend=ranker.rating_blend,
        rating_mean=rating_mean,
        base=retrieval,
        base_temperature=config.temperature,
        boost=ranker.boost_retrieval,
        score_weights=(ranker.base_weight, ranker.own_weight),
        rating_factors=ranker.rating_factors,
        rating_l2=ranker.rating_l2,
        rating_history=ranker.rating_history,
    )
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=config.learning_rate))
    return model


def fit(
    model: tf.keras.Model,
    train: dict[str, np.ndarray],
    config: TrainConfig,
    *,
    epochs: int | None = None,
) -> list[float]:
    """Train for `epochs` (default config.epochs); returns the loss of each epoch."""
    examples = len(train[F.ITEM_ID])
    dataset = (
        tf.data.Dataset.from_tensor_slices(train)
        .shuffle(examples, seed=config.seed, reshuffle_each_iteration=True)
        .batch(config.batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    # A live bar on a terminal, one line per epoch in logs and CI.
    verbose = 1 if sys.stdout.isatty() else 2
    history = model.fit(dataset, epochs=epochs or config.epochs, verbose=verbose)
    return [float(v) for v in history.history["loss"]]


def embed(tower: tf.keras.Model, columns: dict[str, np.ndarray], batch_size: int) -> np.ndarray:
    """Run a tower over raw feature columns in batches -> [rows, embedding_dim]."""
    dataset = tf.data.Dataset.from_tensor_slices(columns).batch(batch_size)
    return np.concatenate([tower(batch).numpy() for batch in dataset], axis=0)
