"""Model inputs built from request data, exactly as the manifest's signatures name them."""

import numpy as np

from app.db.queries import UserProfile
from app.version import ModelVersion


def profile_columns(version: ModelVersion, profiles: list[UserProfile]) -> dict[str, np.ndarray]:
    """The query-side model inputs, one row per profile, as the manifest names them:
    user attributes by column name, the history padded to the model's length. No
    feature logic lives here: lookups and bucketing are inside the SavedModels."""
    length, pad = version.history_length, version.history_pad
    columns = {}
    for name, dtype in version.inputs.items():
        if name == version.history_feature:
            rows = [(p.history[:length] + [pad] * length)[:length] for p in profiles]
            columns[name] = np.array(rows, dtype=object).reshape(len(profiles), length)
        elif name == version.history_ratings_feature:
            columns[name] = _ratings(profiles, length, dtype)
        elif dtype == "string":
            columns[name] = np.array([getattr(p, name) or "" for p in profiles], dtype=object)
        else:
            columns[name] = np.array([getattr(p, name) or 0 for p in profiles], dtype=dtype)
    return columns


def _ratings(profiles: list[UserProfile], length: int, dtype: str) -> np.ndarray:
    """[profiles, length] ratings of the history slots; NaN for none and for padding."""
    nan = [None] * length
    rows = [(p.history_ratings[:length] + nan)[:length] for p in profiles]
    return np.array(rows, dtype=np.float64).reshape(len(profiles), length).astype(dtype)


def call_model(fn, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    import tensorflow as tf

    outputs = fn(**{name: tf.constant(values) for name, values in columns.items()})
    return {name: tensor.numpy() for name, tensor in outputs.items()}
