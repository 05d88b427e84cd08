"""A ModelVersion built in memory, for tests that exercise one part of the serving code."""

import dataclasses

import numpy as np

from app.artifacts import ModelVersion


def bare_version(**changes) -> ModelVersion:  # type: ignore[no-untyped-def]
    """No model, no index, no inputs: override the fields the test is about."""
    empty = ModelVersion(
        version="v",
        manifest={},
        query_fn=None,
        searcher=None,
        item_ids=np.array([]),
        popular=[],
        inputs={},
        history_feature="history",
        history_length=1,
        history_pad="",
        leaves=1,
        reorder=0,
    )
    return dataclasses.replace(empty, **changes)
