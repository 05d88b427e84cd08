"""The ranking model: the second stage that orders the retrieved candidates."""

import tensorflow as tf
import tensorflow_recommenders as tfrs

from models import features as F
from models.candidate_tower import CandidateTower
from models.layers import CategoryEmbedding, ItemIdEmbedding, RatingHistorySummary
from models.query_tower import QueryTower


class RankingModel(tfrs.Model):
    """Scores (user, candidate) pairs, trained on two tasks at once.

    - relevance: a retrieval-style softmax of the positive against in-batch negatives,
      on its own towers (logQ-corrected like the retrieval model);
    - rating: the explicit rating, from global mean + user and item biases + an MLP over
      the two embeddings, their product and (with `rating_history`) a summary of the
      user's recent ratings, optionally through a DCN-v2 cross layer.

    The ranking score is
        base_weight * retrieval logit + own_weight * own relevance logit
        + rating_blend * (predicted rating - mean rating),
    where the retrieval logit comes from the trained retrieval model passed as `base`
    (frozen, and part of this model, so the exported ranker still takes raw features).
    With `boost`, the own relevance is trained as a correction on top of the base logit
    instead of on its own. The weights are chosen on the validation split.
    """

    def __init__(
        self,
        contract: F.Contract,
        *,
        embedding_dim: int,
        hidden_dim: int,
        temperature: float,
        use_cross: bool,
        relevance_weight: float,
        rating_weight: float,
        rating_blend: float,
        rating_mean: float,
        base: tf.keras.Model | None = None,
        base_temperature: float = 1.0,
        boost: bool = False,
        score_weights: tuple[float, float] = (1.0, 1.0),
        rating_factors: int = 0,
        rating_l2: float = 0.0,
        rating_history: bool = True,
    ):
        super().__init__()
        self.base = base
        if base is not None:
            base.trainable = False
        self.base_temperature = base_temperature
        self.embedding_dim = embedding_dim
        self.boost = boost and base is not None
        self.score_weights = score_weights  # (base, own)
        self.contract = contract
        items = ItemIdEmbedding(contract.item_ids, F.ID_DIMS[F.ITEM_ID])
        args = {"embedding_dim": embedding_dim, "hidden_dim": hidden_dim, "normalize": True}
        self.query_tower = QueryTower(contract, items, **args)
        self.candidate_tower = CandidateTower(contract, items, **args)
        # L2 on the rating-only parameters: the rating head overfits long before relevance.
        self.user_bias = CategoryEmbedding(contract.user_ids, 1, l2=rating_l2)
        self.item_bias = CategoryEmbedding(contract.item_ids, 1, l2=rating_l2)
        # Optional matrix-factorisation term <p_user, q_item> of the rating, as SVD has it.
        self.user_factors = (
            CategoryEmbedding(contract.user_ids, rating_factors) if rating_factors else None
        )
        self.item_factors = (
            CategoryEmbedding(contract.item_ids, rating_factors) if rating_factors else None
        )
        self.rating_history = RatingHistorySummary(rating_mean) if rating_history else None
        self.cross = tfrs.layers.dcn.Cross() if use_cross else None
        l2 = tf.keras.regularizers.l2(rating_l2) if rating_l2 else None
        self.rating_head = tf.keras.Sequential(
            [
                tf.keras.layers.Dense(hidden_dim, activation="relu", kernel_regularizer=l2),
                tf.keras.layers.Dense(1, kernel_regularizer=l2),
            ]
        )
        self.temperature = temperature
        self.weights_ = (relevance_weight, rating_weight)
        self.rating_blend = rating_blend
        self.rating_mean = rating_mean
        # Temperatures are applied in `relevance_vectors`, so base and own logits can add.
        # Mean (not summed) losses, so the task weights compare like with like.
        mean = tf.keras.losses.Reduction.SUM_OVER_BATCH_SIZE
        self.relevance_task = tfrs.tasks.Retrieval(
            loss=tf.keras.losses.CategoricalCrossentropy(from_logits=True, reduction=mean),
            remove_accidental_hits=True,
        )
        self.rating_task = tfrs.tasks.Ranking(loss=tf.keras.losses.MeanSquaredError())

    def _query(self, features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return {k: features[k] for k in self.contract.query_features}

    def _candidate(self, features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return {k: features[k] for k in self.contract.candidate_features}

    def embed(self, features: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        """Raw pair features -> query and candidate embeddings, each [batch_size, dim]."""
        queries = self.query_tower(self._query(features))
        candidates = self.candidate_tower(self._candidate(features))
        return queries, candidates

    def relevance_vectors(
        self, features, queries, candidates, base_weight: float = 1.0, own_weight: float = 1.0
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Vectors whose dot product is the weighted relevance logit, [batch_size, dim]."""
        queries = queries * (own_weight / self.temperature)
        if self.base is None or base_weight == 0:
            return queries, candidates
        base_queries = self.base.query_tower(self._query(features))
        base_items = self.base.candidate_tower(self._candidate(features))
        return (
            tf.concat([queries, base_queries * (base_weight / self.base_temperature)], axis=1),
            tf.concat([candidates, base_items], axis=1),
        )

    def predict_rating(self, features: dict[str, tf.Tensor], queries, candidates) -> tf.Tensor:
        """-> [batch_size] predicted explicit rating."""
        parts = [queries, candidates, queries * candidates]
        if self.rating_history is not None:
            parts.append(self.rating_history(features[F.HISTORY_RATINGS]))
        x = tf.concat(parts, axis=1)
        if self.cross is not None:
            x = self.cross(x)
        residual = tf.squeeze(self.rating_head(x), axis=1)
        users, items = features[F.USER_ID], features[F.ITEM_ID]
        biases = tf.squeeze(self.user_bias(users) + self.item_bias(items), axis=1)
        if self.user_factors is not None:
            residual += tf.reduce_sum(self.user_factors(users) * self.item_factors(items), axis=1)
        return self.rating_mean + biases + residual

    def user_vectors(
        self, features: dict[str, tf.Tensor], base_queries: tf.Tensor | None = None
    ) -> dict[str, tf.Tensor]:
        """Raw query features -> everything the ranker needs from the user alone.

        `ranking` [batch_size, ranking_dim]: its dot product with an item's `ranking`
        vector is the relevance part of the score; `rating_user` [batch_size, user_dim]:
        the user's half of the rating head's input. `base_queries` (the retrieval model's
        query embedding, when the caller already has it) saves running that tower twice.
        """
        queries = self.query_tower(self._query(features))
        base_weight, own_weight = self.score_weights
        ranking = queries * (own_weight / self.temperature)
        if self.base is not None and base_weight != 0:
            if base_queries is None:
                base_queries = self.base.query_tower(self._query(features))
            ranking = tf.concat([ranking, base_queries * (base_weight / self.base_temperature)], 1)
        users = features[F.USER_ID]
        parts = [queries]
        if self.rating_history is not None:
            parts.append(self.rating_history(features[F.HISTORY_RATINGS]))
        parts.append(self.user_bias(users))
        if self.user_factors is not None:
            parts.append(self.user_factors(users))
        return {"ranking": ranking, "rating_user": tf.concat(parts, axis=1)}

    def item_vectors(
        self, features: dict[str, tf.Tensor], base_items: tf.Tensor | None = None
    ) -> dict[str, tf.Tensor]:
        """Raw candidate features -> the item's `ranking` vector [batch_size, ranking_dim]
        and `rating_item` [batch_size, item_dim]: computed once per item at export."""
        candidates = self.candidate_tower(self._candidate(features))
        ranking = candidates
        if self.base is not None and self.score_weights[0] != 0:
            if base_items is None:
                base_items = self.base.candidate_tower(self._candidate(features))
            ranking = tf.concat([ranking, base_items], axis=1)
        items = features[F.ITEM_ID]
        parts = [candidates, self.item_bias(items)]
        if self.item_factors is not None:
            parts.append(self.item_factors(items))
        return {"ranking": ranking, "rating_item": tf.concat(parts, axis=1)}

    def rating_from(self, rating_user: tf.Tensor, rating_item: tf.Tensor) -> tf.Tensor:
        """The rating head on precomputed halves ([pairs, user_dim], [pairs, item_dim])
        -> [pairs] predicted rating: the one part of the ranker that crosses user and item."""
        dim = self.embedding_dim
        queries, user_rest = rating_user[:, :dim], rating_user[:, dim:]
        candidates, item_bias = rating_item[:, :dim], rating_item[:, dim : dim + 1]
        parts = [queries, candidates, queries * candidates]
        summary = 0 if self.rating_history is None else self.rating_history.width
        if summary:
            parts.append(user_rest[:, :summary])
        x = tf.concat(parts, axis=1)
        if self.cross is not None:
            x = self.cross(x)
        residual = tf.squeeze(self.rating_head(x), axis=1)
        biases = tf.squeeze(user_rest[:, summary : summary + 1] + item_bias, axis=1)
        if self.user_factors is not None:
            user_factors, item_factors = user_rest[:, summary + 1 :], rating_item[:, dim + 1 :]
            residual += tf.reduce_sum(user_factors * item_factors, axis=1)
        return self.rating_mean + biases + residual

    def call(self, features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Raw pair features (each [batch_size]) -> {"score", "rating"}, each [batch_size].

        Composed from the per-user and per-item halves, exactly as the app composes them
        from the exported query signature and the item vectors precomputed at export.
        """
        users, items = self.user_vectors(features), self.item_vectors(features)
        rating = self.rating_from(users["rating_user"], items["rating_item"])
        relevance = tf.reduce_sum(users["ranking"] * items["ranking"], axis=1)
        return {
            "score": relevance + self.rating_blend * (rating - self.rating_mean),
            "rating": rating,
        }

    def compute_loss(self, features: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        queries, candidates = self.embed(features)
        query_vectors, item_vectors = self.relevance_vectors(
            features, queries, candidates, base_weight=1.0 if self.boost else 0.0
        )
        relevance = self.relevance_task(
            query_vectors,
            item_vectors,
            candidate_ids=features[F.ITEM_ID],
            candidate_sampling_probability=features[F.CANDIDATE_PROBABILITY],
            compute_metrics=False,
            compute_batch_metrics=False,
        )
        truth = features[F.RATING]
        known = tf.logical_not(tf.math.is_nan(truth))
        rating = self.rating_task(
            labels=tf.where(known, truth, 0.0)[:, None],
            predictions=self.predict_rating(features, queries, candidates)[:, None],
            sample_weight=tf.cast(known, tf.float32)[:, None],
            compute_metrics=False,
        )
        relevance_weight, rating_weight = self.weights_
        return relevance_weight * relevance + rating_weight * rating
