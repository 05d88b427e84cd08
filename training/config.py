"""Training knobs, kept apart from the feature contract (models/features.py)."""

from typing import Literal

from pydantic import BaseModel, Field


class IndexConfig(BaseModel):
    """ScaNN: partition the catalog into leaves, score with asymmetric hashing, re-rank."""

    mode: Literal["tree_ah", "brute_force"] = "tree_ah"
    # Leaves default to about sqrt(catalog size); searched leaves bound the recall/speed trade.
    num_leaves: int | None = None
    leaves_to_search_fraction: float = Field(default=0.25, gt=0, le=1)
    dimensions_per_block: int = 2
    anisotropic_quantization_threshold: float = 0.2
    reorder_num_neighbors: int = 200


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
    eval_cutoffs: tuple[int, ...] = (10, 50, 100)
    index: IndexConfig = Field(default_factory=IndexConfig)
