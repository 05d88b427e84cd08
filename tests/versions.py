"""A ModelVersion built in memory, for tests that exercise one part of the serving code."""

import dataclasses

import numpy as np

from app.version import ModelVersion


def bare_version(**changes) -> ModelVersion:  # type: ignore[no-untyped-def]
    """No model, no index, no inputs, no ranking: override the fields the test is about.
    The id -> row map follows `item_ids`, as the loader builds it, unless given."""
    empty = ModelVersion(
        version="v",
        manifest={},
        query_fn=None,
        searcher=None,
        item_ids=np.array([], dtype=object),
        popular=[],
        inputs={},
        history_feature="history",
        history_length=1,
        history_pad="",
        leaves=1,
        reorder=0,
    )
    version = dataclasses.replace(empty, **changes)
    if "row_of" in changes:
        return version
    row_of = {item: row for row, item in enumerate(version.item_ids.tolist())}
    return dataclasses.replace(version, row_of=row_of)
