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

from rich.console import Console

from app.settings import Settings
from training import baselines, pipeline, report
from training.config import TrainConfig
from training.dataset import leave_last_out


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
    item_ids = sorted(catalog.items)
    console.print("[bold]tuning baselines on the validation split[/bold]")
    validation = leave_last_out(catalog, config.history_length, "validation")
    tuned = baselines.tune_baselines(validation, item_ids, seed=config.seed)
    for name, result in tuned.items():
        console.print(f"  {name}: {result['params']} -> validation {result['validation']}")
    trained = pipeline.train(catalog, config, console=console)
    staged = pipeline.stage(settings, trained)
    own = pipeline.evaluate_version(settings, trained, staged, console=Console(quiet=True))
    split = trained.split
    methods = {
        "two-stage (served)": own["metrics"]["served"],
        "two-tower retrieval only": own["metrics"]["retrieval_only"],
        "popularity": own["metrics"]["popularity"],
        "EASE": report.score_matrix_metrics(
            baselines.ease_scores(split, item_ids, **tuned["ease"]["params"]), split, item_ids
        ),
        "ALS (implicit)": report.score_matrix_metrics(
            baselines.als_scores(split, item_ids, seed=config.seed, **tuned["als"]["params"]),
            split,
            item_ids,
        ),
        "SVD (surprise)": report.method_metrics(
            None,
            None,
            len(item_ids),
            rating_pred=baselines.svd_rating_predictions(
                split, seed=config.seed, **tuned["svd"]["params"]
            ),
            rating_truth=split.test_ratings,
        ),
    }
    result = {
        "protocol": {
            "dataset": f"{len(catalog.users)} users x {len(item_ids)} items",
            "description": "leave-last-out, full catalog, seen items excluded",
            **pipeline.PROTOCOL,
            "tuning": "baselines' hyperparameters chosen on each user's validation item",
            "data": {
                "users": len(catalog.users),
                "items": len(item_ids),
                "test_users": len(split.test_users),
                "fingerprint": catalog.fingerprint,
            },
            "seed": config.seed,
            "python": platform.python_version(),
            "seconds": None,
        },
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


def _headline(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if k != "hr_curve"}
