"""`recsys evaluate`: every method on one split, side by side, in one run.

Protocol: temporal leave-last-out. Baselines pick their hyperparameters on the
validation item (each user's second most recent); everything is then fitted on all
but each user's most recent item and measured on that test item, ranking the whole
catalog with the user's training items excluded. The product's pipeline is measured
exactly as served: exported to a version folder and run through the app's own code.
"""

import platform
import time
from pathlib import Path

import numpy as np
from rich.console import Console

from app.settings import Settings
from training import baselines, pipeline, report, sequential
from training.config import TrainConfig
from training.contract import build_contract
from training.dataset import Catalog, Split, leave_last_out


def run_evaluation(
    settings: Settings,
    config: TrainConfig,
    *,
    console: Console,
    json_path: Path | None,
    chart_path: Path | None,
    publish: bool = False,
    max_users: int | None = None,
) -> dict:
    started = time.monotonic()
    catalog = pipeline.read(settings, max_users)
    item_ids = catalog.item_ids.tolist()
    tuned = _tune(catalog, config, console)
    trained = pipeline.train(catalog, config, console=console)
    staged = pipeline.stage(settings, trained)
    own = pipeline.evaluate_version(settings, trained, staged, console=Console(quiet=True))
    split = trained.split
    methods = {
        "two-stage (served)": own["metrics"]["served"],
        "two-tower retrieval only": own["metrics"]["retrieval_only"],
        "popularity": own["metrics"]["popularity"],
        **_baselines(split, item_ids, tuned, config.seed),
    }
    skipped = baselines.skipped(split, item_ids)
    for name, reason in skipped.items():
        console.print(f"  {name} skipped: {reason}")
    result = {
        "protocol": _protocol(catalog, split, config),
        "skipped": skipped,
        "baseline_tuning": {
            n: {"params": r["params"], "validation": r["validation"]} for n, r in tuned.items()
        },
        "train_config": config.model_dump(mode="json"),
        "methods": methods,
    }
    own["comparison"] = {name: _headline(entry) for name, entry in methods.items()}
    pipeline.finish_manifest(staged, trained, own)
    folder = pipeline.publish_staged(settings, staged.folder, make_live=publish)
    result["protocol"]["seconds"] = round(time.monotonic() - started, 1)
    result["version"] = folder.name
    report.print_table(console, result)
    if json_path:
        console.print(f"report: {report.write_json(result, json_path)}")
    if chart_path:
        console.print(f"chart: {report.write_chart(result, chart_path)}")
    return result


def _tune(catalog: Catalog, config: TrainConfig, console: Console) -> dict:
    """Every baseline's hyperparameters, chosen on the validation split."""
    console.print("[bold]tuning baselines on the validation split[/bold]")
    contract = build_contract(catalog, config.history_length)
    validation = leave_last_out(catalog, contract, "validation")
    tuned = baselines.tune_baselines(validation, catalog.item_ids.tolist(), seed=config.seed)
    tuned["sequential"] = _tune_sequential(validation)
    for name, result in tuned.items():
        console.print(f"  {name}: {result['params']} -> validation {result['validation']}")
    return tuned


def _protocol(catalog: Catalog, split: Split, config: TrainConfig) -> dict:
    users, items = len(catalog.user_ids), len(catalog.item_ids)
    return {
        "dataset": f"{catalog.config.name}: {users} users x {items} items",
        "description": "leave-last-out, full catalog, seen items excluded",
        **pipeline.PROTOCOL,
        "tuning": "baselines' hyperparameters chosen on each user's validation item",
        "data": {
            "catalog": catalog.config.name,
            "users": users,
            "items": items,
            "interactions": catalog.events,
            "test_users": len(split.test_positions),
            "fingerprint": catalog.fingerprint,
        },
        "seed": config.seed,
        "python": platform.python_version(),
        "seconds": None,
    }


def _baselines(split: Split, item_ids: list[str], tuned: dict, seed: int) -> dict:
    """The tuned baselines refitted on the test split (those this catalog allows)."""
    methods = {}
    if "ease" in tuned:
        scores = baselines.ease_scores(split, item_ids, **tuned["ease"]["params"])
        methods["EASE"] = report.score_matrix_metrics(scores, split, item_ids)
    scores = baselines.als_scores(split, item_ids, seed=seed, **tuned["als"]["params"])
    methods["ALS (implicit)"] = report.score_matrix_metrics(scores, split, item_ids)
    methods["item transitions (sequential)"] = _sequential_metrics(
        split, item_ids, tuned["sequential"]["params"]
    )
    if "svd" in tuned:
        predictions = baselines.svd_rating_predictions(split, seed=seed, **tuned["svd"]["params"])
        methods["SVD (surprise)"] = report.method_metrics(
            None, None, len(item_ids), rating_pred=predictions, rating_truth=split.test_ratings
        )
    return methods


def _tune_sequential(validation: Split) -> dict:
    train, histories = baselines.split_sequences(validation)
    items = len(validation.catalog.item_ids)
    targets = validation.test_item_rows
    return sequential.tune_sequential(train, histories, targets, histories, items)


def _sequential_metrics(split: Split, item_ids: list[str], params: dict) -> dict:
    """The order-aware baseline refitted on the test split: each user's training items
    before the held-out one, scored a chunk of users at a time."""
    train, histories = baselines.split_sequences(split)
    transitions = sequential.fit_transitions(train, len(item_ids), **sequential.fit_kwargs(params))
    popularity = sequential.item_popularity(train, len(item_ids))
    knobs = sequential.score_kwargs(params)

    def rows(start: int, stop: int) -> np.ndarray:
        chunk = histories.rows(start, stop)
        return sequential.transition_scores(transitions, chunk, popularity, **knobs)

    return report.score_rows_metrics(rows, split, item_ids)


def _headline(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if k != "hr_curve"}
