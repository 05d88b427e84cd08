"""The two-tower retrieval model: query tower, candidate tower and the retrieval task."""

import tensorflow as tf
import tensorflow_recommenders as tfrs

from models import features as F
from models.candidate_tower import CandidateTower
from models.layers import ItemIdEmbedding
from models.query_tower import QueryTower


class TwoTowerModel(tfrs.Model):
    """Learns query and candidate embeddings whose dot product ranks a user's next item.

    In-batch softmax (other examples' items are the negatives); items the batch shares
    with the positive are not counted as negatives (`remove_accidental_hits`). Popular
    items are over-represented among in-batch negatives; with `logq_correction` the
    logits are corrected by each candidate's sampling probability so scores estimate
    p(item | user) instead of favouring rare items.
    """

    def __init__(
        self,
        contract: F.Contract,
        *,
        embedding_dim: int,
        hidden_dim: int,
        temperature: float,
        normalize: bool,
        logq_correction: bool = True,
    ):
        super().__init__()
        shared_items = ItemIdEmbedding(contract.item_ids, F.ID_DIMS[F.ITEM_ID])
        tower_args = {
            "embedding_dim": embedding_dim,
            "hidden_dim": hidden_dim,
            "normalize": normalize,
        }
        self.contract = contract
        self.query_tower = QueryTower(contract, shared_items, **tower_args)
        self.candidate_tower = CandidateTower(contract, shared_items, **tower_args)
        self.logq_correction = logq_correction
        self.task = tfrs.tasks.Retrieval(temperature=temperature, remove_accidental_hits=True)

    def compute_loss(self, features: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        queries = self.query_tower({k: features[k] for k in self.contract.query_features})
        candidates = self.candidate_tower(
            {k: features[k] for k in self.contract.candidate_features}
        )
        return self.task(
            queries,
            candidates,
            candidate_ids=features[F.ITEM_ID],
            candidate_sampling_probability=(
                features[F.CANDIDATE_PROBABILITY] if self.logq_correction else None
            ),
            compute_metrics=False,
            compute_batch_metrics=False,
        )
