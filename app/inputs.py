"""Model inputs built from request data, exactly as the manifest's signatures name them."""

from typing import Any

import numpy as np

from app.db.queries import UserProfile
from app.version import ModelVersion


def profile_columns(version: ModelVersion, profiles: list[UserProfile]) -> dict[str, np.ndarray]:
    """The query-side model inputs, one row per profile, as the manifest names them: the
    user id, each user attribute by its name (the catalog's), the history padded to the
    model's length. No feature logic lives here: lookups, bucketing and tokenising are
    inside the SavedModels. A missing attribute is "" (strings) or NaN (numbers)."""
    length, pad = version.history_length, version.history_pad
    columns = {}
    for name, dtype in version.inputs.items():
        if name == version.history_feature:
            rows = [(p.history[:length] + [pad] * length)[:length] for p in profiles]
            columns[name] = np.array(rows, dtype=object).reshape(len(profiles), length)
        elif name == version.history_ratings_feature:
            columns[name] = _ratings(profiles, length, dtype)
        elif name == version.user_id_feature:
            columns[name] = np.array([p.user_id for p in profiles], dtype=object)
        else:
            values = [p.attributes.get(name) for p in profiles]
            columns[name] = _attribute(values, dtype)
    return columns


def _attribute(values: list[Any], dtype: str) -> np.ndarray:
    if dtype == "string":
        return np.array(["" if v is None else str(v) for v in values], dtype=object)
    if dtype.startswith("int"):  # versions before the catalog contract (age as int64)
        return np.array([0 if v is None else int(v) for v in values], dtype=dtype)
    return np.array([np.nan if v is None else float(v) for v in values], dtype=dtype)


def _ratings(profiles: list[UserProfile], length: int, dtype: str) -> np.ndarray:
    """[profiles, length] ratings of the history slots; NaN for none and for padding."""
    nan = [None] * length
    rows = [(p.history_ratings[:length] + nan)[:length] for p in profiles]
    return np.array(rows, dtype=np.float64).reshape(len(profiles), length).astype(dtype)


def call_model(fn, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    import tensorflow as tf

    outputs = fn(**{name: tf.constant(values) for name, values in columns.items()})
    return {name: tensor.numpy() for name, tensor in outputs.items()}
