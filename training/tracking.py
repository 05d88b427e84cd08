"""Optional MLflow tracking of a training run: its parameters, per-epoch curves, the
final metrics and the exported version folder (RECSYS_TRAINING_MLFLOW_TRACKING_URI)."""

from pathlib import Path
from typing import Any

from app.settings import TrainingSettings


class TrackingError(RuntimeError):
    """MLflow is asked for but not installed."""


def record(settings: TrainingSettings, trained: Any, folder: Path, results: dict) -> str:
    """Log one run; returns its id."""
    try:
        import mlflow
    except ImportError:
        raise TrackingError(
            "RECSYS_TRAINING_MLFLOW_TRACKING_URI is set but MLflow is not installed: "
            "pip install mlflow-skinny"
        ) from None
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    if mlflow.get_experiment_by_name(settings.mlflow_experiment) is None:
        mlflow.create_experiment(
            settings.mlflow_experiment, artifact_location=settings.mlflow_artifact_location
        )
    mlflow.set_experiment(settings.mlflow_experiment)
    with mlflow.start_run(run_name=folder.name) as run:
        mlflow.log_params(_flat(trained.config.model_dump(mode="json")))
        mlflow.set_tags({"version": folder.name, "catalog": trained.catalog.config.name})
        for stage, series in trained.curves.items():
            for name, values in series.items():
                for epoch, value in enumerate(values):
                    mlflow.log_metric(_key(f"{stage}.{name}"), value, step=epoch)
        served = results["metrics"]["served"]
        finals = {_key(f"served.{k}"): v for k, v in served.items() if isinstance(v, int | float)}
        mlflow.log_metrics({**finals, "index_recall_at_10": results["index_recall@10"]})
        mlflow.log_artifacts(str(folder), artifact_path="version")
        return str(run.info.run_id)


def _key(name: str) -> str:
    return name.replace("@", "_at_")  # MLflow's metric names allow no "@"


def _flat(config: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat
