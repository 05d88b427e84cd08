"""`recsys tune`: a bounded hyperparameter search on the validation split (optuna).

Each trial trains both stages on all but each user's last two interactions and scores
the served pipeline on the second-to-last one (NDCG@10), so test items never influence
the choice. The best configuration is written where `recsys train` reads it.
"""

import tempfile
from pathlib import Path

import optuna
from rich.console import Console
from rich.table import Table

from app.settings import ArtifactSettings, Settings
from training import pipeline
from training.config import TrainConfig
from training.dataset import Catalog

OBJECTIVE = "ndcg@10"


def suggest(trial: optuna.Trial, base: TrainConfig) -> TrainConfig:
    """The search space: the knobs that moved validation NDCG most in manual trials."""
    ranker = base.ranker.model_copy(
        update={
            "rating_blend": trial.suggest_float("ranker.rating_blend", 0.0, 2.0),
            "rating_weight": trial.suggest_float("ranker.rating_weight", 0.1, 2.0, log=True),
            "epochs": trial.suggest_int("ranker.epochs", 3, 10),
        }
    )
    return base.model_copy(
        update={
            "embedding_dim": trial.suggest_categorical("embedding_dim", [32, 64, 128]),
            "temperature": trial.suggest_float("temperature", 0.03, 0.3, log=True),
            "learning_rate": trial.suggest_float("learning_rate", 1e-3, 1e-2, log=True),
            "epochs": trial.suggest_int("epochs", 3, 12),
            "history_length": trial.suggest_categorical("history_length", [10, 20, 50]),
            "ranker": ranker,
        }
    )


def validation_score(settings: Settings, catalog: Catalog, config: TrainConfig) -> dict:
    """Train on the validation split, export to a scratch folder, score as served."""
    with tempfile.TemporaryDirectory(prefix="recsys-tune-") as scratch:
        local = settings.model_copy(update={"artifacts": ArtifactSettings(dir=Path(scratch))})
        quiet = Console(quiet=True)
        trained = pipeline.train(catalog, config, console=quiet, holdout="validation", watch=False)
        staged = pipeline.stage(local, trained)
        results = pipeline.evaluate_version(local, trained, staged, console=quiet)
    return results["metrics"]["served"]


def run_tuning(
    settings: Settings,
    base: TrainConfig,
    *,
    trials: int,
    timeout: float,
    output: Path,
    console: Console,
    max_users: int | None = None,
) -> TrainConfig:
    catalog = pipeline.read(settings, max_users)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=base.seed)
    )
    study.enqueue_trial(_as_params(base))  # the current config is the first candidate
    configs: dict[int, TrainConfig] = {}

    def objective(trial: optuna.Trial) -> float:
        configs[trial.number] = config = suggest(trial, base)
        metrics = validation_score(settings, catalog, config)
        console.print(
            f"trial {trial.number}: validation {OBJECTIVE}={metrics[OBJECTIVE]:.4f} "
            f"hr@10={metrics['hr@10']:.4f} rmse={_number(metrics['rmse'])} {trial.params}"
        )
        return float(metrics[OBJECTIVE])

    study.optimize(objective, n_trials=trials, timeout=timeout)
    best = configs[study.best_trial.number]
    _print_trials(console, study)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(best.model_dump_json(indent=2) + "\n")
    console.print(f"best validation {OBJECTIVE} {study.best_value:.4f}; config written to {output}")
    return best


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _as_params(config: TrainConfig) -> dict:
    return {
        "ranker.rating_blend": config.ranker.rating_blend,
        "ranker.rating_weight": config.ranker.rating_weight,
        "ranker.epochs": config.ranker.epochs,
        "embedding_dim": config.embedding_dim,
        "temperature": config.temperature,
        "learning_rate": config.learning_rate,
        "epochs": config.epochs,
        "history_length": config.history_length,
    }


def _print_trials(console: Console, study: optuna.Study) -> None:
    table = Table(title=f"validation {OBJECTIVE} per trial")
    table.add_column("trial", justify="right")
    table.add_column(OBJECTIVE, justify="right")
    table.add_column("parameters")
    for trial in sorted(study.trials, key=lambda t: -(t.value or 0)):
        value = f"{trial.value:.4f}" if trial.value is not None else str(trial.state.name)
        table.add_row(str(trial.number), value, str(trial.params))
    console.print(table)
