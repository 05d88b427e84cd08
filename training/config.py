"""Training knobs, kept apart from the feature contract (models/features.py)."""

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field


class IndexConfig(BaseModel):
    """The ScaNN searcher over every item embedding.

    "auto" follows ScaNN's own guide by catalog size: exact brute force under
    `brute_force_below` items (a 20k x 64 scan is well under a millisecond, and an
    approximate index there only loses candidates: on MovieLens' validation items a
    k-means tree over the 1,682 items cut served HR@100 from 0.69-0.70 to 0.58-0.66 and
    NDCG@10 from 0.126-0.129 to 0.122, varying with each build); asymmetric hashing +
    exact re-rank under `partition_above`; above that, a k-means tree first.
    """

    mode: Literal["auto", "brute_force", "ah", "tree_ah"] = "auto"
    brute_force_below: int = Field(default=20_000, ge=0)
    partition_above: int = Field(default=100_000, ge=0)
    # Tree only. Leaves default to about sqrt(catalog size); searched leaves bound the
    # recall/speed trade. A share of sqrt(n) leaves scans that share of the items, so the
    # speedup over brute force holds as the catalog grows. `recsys bench index` (synthetic
    # clustered low-rank 64-dim catalog, 2 CPUs) found recall@10 stops growing at about
    # 5% of the leaves. 1M items / 1000 leaves: 250 searched (the former 0.25) gave 0.993
    # at 0.35-0.38 ms p50, only 41-80x numpy brute force (15.5-29 ms); 100 gave the same
    # 0.993 at 0.16-0.17 ms (about 95x on a quiet machine); 50 gave 0.992 at 0.10 ms.
    # 3M items: 173 of 1732 leaves 0.986 at 0.49 ms, 92x (433 of them: 39x). 0.1 rather
    # than 0.05 keeps the app's deep requests (128 results, 512 re-ranked) at recall
    # 0.99-0.995 from 100k items (the smallest "auto" tree, 32 of 316 leaves) to 1M.
    # Trees far smaller than that (forced `tree_ah`) get too few leaves from a share
    # alone: 2 of 17 leaves at 300 items; such trees need a floor in items searched.
    # Given held-out queries (the export passes its own users' query vectors), the export
    # searches fewer leaves than this share when fewer keep recall@k at `target_recall`
    # (training.export.fewest_leaves): 1M synthetic items, 1000 leaves, 20 searched kept
    # 0.99 at ~4x less time than 100. None: always the share.
    num_leaves: int | None = None
    leaves_to_search_fraction: float = Field(default=0.1, gt=0, le=1)
    target_recall: float | None = Field(default=0.98, gt=0, le=1)
    # When the share itself misses `target_recall` (a model whose embeddings the hashing
    # cannot rank that well), the fewest leaves within this much of the share's own
    # recall. 1M synthetic items, the trained model, 1000 leaves, recall@100: 100 searched
    # 0.8215 at 0.228 ms a query, 75 0.8175, 50 0.8078 at 0.164 ms, 30 0.7847; served,
    # 50 leaves against 100, wrk at 32 connections, three alternating 15 s pairs:
    # 1,535-1,706 req/s against 1,334-1,429, p99 26.1-30.1 ms against 29.4-31.6.
    recall_slack: float = Field(default=0.02, ge=0, lt=1)
    # Asymmetric hashing and the exact re-rank of its best candidates (ah, tree_ah).
    dimensions_per_block: int = 2
    anisotropic_quantization_threshold: float = 0.2
    reorder_num_neighbors: int = 200
    # The app re-ranks at least this many candidates per result it asks for: the ranker
    # asks for 100 + the user's seen items, far past the k=10 `reorder_num_neighbors` is
    # sized for. Hashing alone over 20k x 64 items re-ranking 200 kept recall@100 at 0.86;
    # re-ranking 500 (about 4 per result) gave 1.0.
    reorder_multiplier: float = Field(default=4.0, ge=1)


class RankerConfig(BaseModel):
    """The second stage (models/ranking.py) and how the app uses it."""

    enabled: bool = True
    embedding_dim: int = Field(default=64, ge=2)
    hidden_dim: int = Field(default=128, ge=1)
    temperature: float = Field(default=0.1, gt=0)
    use_cross: bool = True  # DCN-v2 cross layer in the rating head
    # Train the own relevance as a correction on top of the frozen retrieval score.
    boost_retrieval: bool = False
    # Ranking score = base_weight * retrieval logit + own_weight * own logit + rating blend.
    base_weight: float = Field(default=1.0, ge=0)
    own_weight: float = Field(default=1.0, ge=0)
    relevance_weight: float = Field(default=1.0, ge=0)
    rating_weight: float = Field(default=1.0, ge=0)
    # L2 weight on the rating head and the user/item rating biases.
    rating_l2: float = Field(default=0.0, ge=0)
    # Feed a summary of the user's recent ratings to the rating head. Validation RMSE
    # 0.952 / 0.947 with it vs 0.973 / 0.985 without (seeds 42 / 43; a one-off comparison:
    # `recsys tune` prints each trial's validation RMSE).
    rating_history: bool = True
    # Size of the rating head's user x item factorisation term (0: none).
    rating_factors: int = Field(default=0, ge=0)
    # How much predicted rating (in stars above the mean) moves the ranking score.
    rating_blend: float = Field(default=0.0, ge=0)
    # 3, chosen on the validation split: the rating head overfits with more passes (val
    # RMSE 0.968 at 3 epochs vs 0.989 at 8) while relevance barely changes.
    epochs: int = Field(default=3, ge=1)
    # Retrieved candidates the app hands to the ranker (at least k are always ranked).
    # 100, chosen on validation: NDCG@10 0.1279 at 100 and at 400, 0.1255 at 200.
    candidates: int = Field(default=100, ge=1)


class TrainConfig(BaseModel):
    seed: int = 42
    history_length: int = Field(default=20, ge=1)
    embedding_dim: int = Field(default=64, ge=2)
    hidden_dim: int = Field(default=128, ge=1)
    normalize: bool = True
    temperature: float = Field(default=0.1, gt=0)
    logq_correction: bool = True
    epochs: int = Field(default=8, ge=1)
    batch_size: int = Field(default=1024, ge=2)
    learning_rate: float = Field(default=0.003, gt=0)
    popular_items: int = Field(default=200, ge=1)
    # Users whose validation event is withheld from training and ranked after every epoch
    # (the curves in each version's training_curves.png and TensorBoard logs); 0: none.
    validation_users: int = Field(default=500, ge=0)
    index: IndexConfig = Field(default_factory=IndexConfig)
    ranker: RankerConfig = Field(default_factory=RankerConfig)


def load_config(path: Path, *, required: bool = False) -> tuple[TrainConfig, str]:
    """The config in `path` (as `recsys tune` writes it), else the defaults above."""
    if not path.is_file():
        if required:
            raise FileNotFoundError(f"{path}: no such training config")
        return TrainConfig(), "defaults (training/config.py)"
    return TrainConfig.model_validate_json(path.read_text()), str(path)
