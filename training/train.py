"""Fit the two-tower model on the training split, streamed a batch at a time."""

import itertools
import sys
from collections.abc import Iterator

import numpy as np
import tensorflow as tf

from models import features as F
from models.ranking import RankingModel
from models.retrieval import TwoTowerModel
from training.config import TrainConfig
from training.dataset import Split, example_columns


def build_model(contract: F.Contract, config: TrainConfig) -> TwoTowerModel:
    model = TwoTowerModel(
        contract,
        embedding_dim=config.embedding_dim,
        hidden_dim=config.hidden_dim,
        temperature=config.temperature,
        normalize=config.normalize,
        logq_correction=config.logq_correction,
    )
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=config.learning_rate))
    return model


def build_ranker(
    contract: F.Contract,
    config: TrainConfig,
    rating_mean: float,
    retrieval: TwoTowerModel | None = None,
) -> RankingModel:
    ranker = config.ranker
    model = RankingModel(
        contract,
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
    split: Split,
    config: TrainConfig,
    *,
    epochs: int | None = None,
    callbacks: list[tf.keras.callbacks.Callback] | None = None,
) -> list[float]:
    """Train for `epochs` (default config.epochs); returns the loss of each epoch."""
    # A live bar on a terminal, one line per epoch in logs and CI.
    verbose = 1 if sys.stdout.isatty() else 2
    dataset = training_batches(split, config.batch_size, seed=config.seed)
    history = model.fit(
        dataset, epochs=epochs or config.epochs, verbose=verbose, callbacks=callbacks or []
    )
    return [float(v) for v in history.history["loss"]]


def training_batches(split: Split, batch_size: int, *, seed: int) -> tf.data.Dataset:
    """The training examples in a new random order each epoch, built a batch at a time
    from the split's arrays (memory: one batch, not the data set, as model inputs)."""
    contract, epochs = split.contract, itertools.count()
    signature = {
        **contract.ranker_signature(),
        F.RATING: tf.TensorSpec([None], tf.float32),
        F.CANDIDATE_PROBABILITY: tf.TensorSpec([None], tf.float32),
    }

    def generate() -> Iterator[dict[str, np.ndarray]]:
        order = np.random.default_rng([seed, next(epochs)]).permutation(split.train_positions)
        for start in range(0, len(order), batch_size):
            yield example_columns(split, order[start : start + batch_size])

    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    return dataset.prefetch(2)


def embed(tower: tf.keras.Model, columns: dict[str, np.ndarray], batch_size: int) -> np.ndarray:
    """Run a tower over raw feature columns in batches -> [rows, embedding_dim]."""
    dataset = tf.data.Dataset.from_tensor_slices(columns).batch(batch_size)
    return np.concatenate([tower(batch).numpy() for batch in dataset], axis=0)
