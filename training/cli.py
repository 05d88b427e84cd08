"""The `recsys` command line: migrations, data, training and serving."""

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # TFRS needs tf-keras, not Keras 3
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402

from app.settings import get_settings  # noqa: E402
from training.models_cli import models_cli  # noqa: E402

# Wide enough for the metrics table when output goes to a log instead of a terminal.
console = Console(width=None if sys.stdout.isatty() else 150)
cli = typer.Typer(help="Two-tower recommendation service.", no_args_is_help=True)
db_cli = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
data_cli = typer.Typer(
    help="Catalogs: fetch MovieLens 100K, load a catalog, write a synthetic one.",
    no_args_is_help=True,
)
bench_cli = typer.Typer(
    help="Benchmarks: the served API under load, the ScaNN index at scale.", no_args_is_help=True
)
cli.add_typer(db_cli, name="db")
cli.add_typer(data_cli, name="data")
cli.add_typer(bench_cli, name="bench")
cli.add_typer(models_cli, name="models")

MovieLensDir = Annotated[
    Path | None,
    typer.Option(help="Folder holding u.data, u.item, u.user (default: RECSYS_MOVIELENS_DIR)."),
]


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=1)


@db_cli.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: head)."""
    from training.migrate import upgrade

    upgrade(get_settings().database.url, revision)
    console.print(f"database at revision {revision}")


@db_cli.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="e.g. base or -1")]) -> None:
    """Revert migrations down to REVISION."""
    from training.migrate import downgrade

    downgrade(get_settings().database.url, revision)
    console.print(f"database at revision {revision}")


@data_cli.command("fetch")
def data_fetch(movielens_dir: MovieLensDir = None) -> None:
    """Make MovieLens 100K available: verify a local folder, or download and verify it."""
    from training.movielens import MovieLensError, fetch, verify

    settings = get_settings().movielens
    folder = movielens_dir or settings.dir
    try:
        if folder is not None:
            verify(folder)
        else:
            console.print(f"downloading {settings.url}")
            folder = fetch(settings.url, settings.download_dir)
    except (MovieLensError, OSError) as exc:
        raise _fail(str(exc)) from None
    console.print(f"MovieLens 100K verified in {folder}")


CatalogName = Annotated[
    str,
    typer.Option(
        help="A catalog config file, or a shipped one's name: movielens-100k, "
        "movielens-latest-small."
    ),
]
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        "--movielens-dir",
        help="Folder holding the catalog's files (default: for movielens-100k "
        "RECSYS_MOVIELENS_DIR or the downloaded copy; for a config file, its folder).",
    ),
]


@data_cli.command("load")
def data_load(catalog: CatalogName = "movielens-100k", data_dir: DataDir = None) -> None:
    """Load a catalog's users, items and interactions into the database (idempotent,
    all or nothing; one catalog per database)."""
    import resource

    from app.catalog import CatalogError
    from training.catalog_files import CatalogFileError
    from training.load import LoadError

    started = time.perf_counter()
    try:
        config, folder = _catalog_and_folder(catalog, data_dir)
        counts, read = asyncio.run(_load(config, folder))
    except (CatalogError, CatalogFileError, LoadError, OSError) as exc:
        raise _fail(str(exc)) from None
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    console.print("rows now in the database: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    rows = sum(read.values())
    console.print(
        f"catalog {config.name!r}: read {rows:,} rows from {folder} in {seconds:.1f} s "
        f"({rows / max(seconds, 1e-9):,.0f} rows/s), peak memory {peak:,.0f} MiB"
    )


def _catalog_and_folder(catalog: str, data_dir: Path | None):  # type: ignore[no-untyped-def]
    from app.catalog import read_catalog_config
    from training.catalog_files import CatalogFileError, find_catalog

    path = find_catalog(catalog)
    config = read_catalog_config(path)
    if data_dir is not None:
        return config, data_dir
    if config.format == "movielens-100k":
        settings = get_settings().movielens
        folder = settings.dir or settings.download_dir / "ml-100k"
        if not (folder / config.interactions.file).is_file():
            raise CatalogFileError(
                f"{folder}: no MovieLens 100K here: run `recsys data fetch` first "
                "(or set RECSYS_MOVIELENS_DIR, or pass --data-dir)"
            )
        return config, folder
    if Path(catalog).is_file():  # a config of one's own lives beside its files
        return config, path.parent
    raise CatalogFileError(f"catalog {config.name!r} ships without its data: pass --data-dir")


async def _load(config, folder: Path) -> tuple[dict[str, int], dict[str, int]]:  # type: ignore[no-untyped-def]
    """(row counts after the load, rows read per file), with a progress line per step."""
    from app.db.engine import create_engine
    from training.load import load_catalog

    engine = create_engine(get_settings().database)
    try:
        with _LoadProgress() as steps:
            counts = await load_catalog(engine, config, folder, on_progress=steps.show)
    finally:
        await engine.dispose()
    return counts, steps.read


class _LoadProgress:
    """One progress line per step of a load (reading a file, writing a table, analyze)."""

    READ = ("users", "items", "interactions")

    def __init__(self) -> None:
        from rich.progress import BarColumn, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("{task.description:<22}"),
            BarColumn(),
            TextColumn("{task.completed:>13,.0f} rows"),
            TimeElapsedColumn(),
            console=console,
        )
        self.tasks: dict[str, int] = {}
        self.read: dict[str, int] = {}

    def __enter__(self) -> "_LoadProgress":
        self.progress.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.finish()
        self.progress.stop()

    def show(self, step: str, rows: int) -> None:
        if step not in self.tasks:
            self.finish()  # a new step: the ones before it are done
            label = f"reading {step}" if step in self.READ else step
            self.tasks[step] = self.progress.add_task(label, total=None)
        self.progress.update(self.tasks[step], completed=rows)
        if step in self.READ:
            self.read[step] = rows

    def finish(self) -> None:
        for task in self.progress.tasks:
            if not task.finished:
                self.progress.update(task.id, total=task.completed, completed=task.completed)
                self.progress.stop_task(task.id)


@data_cli.command("synth")
def data_synth(
    out: Annotated[Path, typer.Option(help="Folder to write the catalog's files into.")],
    users: Annotated[int, typer.Option(min=1, help="Customers.")] = 10_000,
    items: Annotated[int, typer.Option(min=1, help="Products.")] = 5_000,
    interactions: Annotated[
        int, typer.Option(min=0, help="Events (view, click, purchase).")
    ] = 500_000,
    no_users: Annotated[
        bool,
        typer.Option("--no-users", help="Write no users.csv: a catalog of ids and history alone."),
    ] = False,
    seed: Annotated[int, typer.Option(help="Fixes every random choice.")] = 0,
) -> None:
    """Write a synthetic shop in the generic catalog format (CSV files and catalog.toml),
    with taste clusters, popularity skew and sequential structure to learn from."""
    import shlex

    from training.synth import write_synthetic

    with Progress(console=console, transient=True) as progress:
        tasks: dict[str, int] = {}

        def show(name: str, rows: int) -> None:
            if name not in tasks:
                total = {"users.csv": users, "items.csv": items}.get(name, interactions)
                tasks[name] = progress.add_task(f"writing {name}", total=total)
            progress.update(tasks[name], completed=rows)

        config = write_synthetic(
            out,
            users=users,
            items=items,
            interactions=interactions,
            with_users=not no_users,
            seed=seed,
            on_progress=show,
        )
    console.print(f"{config.description} written to {out}")
    command = f"recsys data load --catalog {shlex.quote(str(out / 'catalog.toml'))} " + (
        f"--data-dir {shlex.quote(str(out))}"
    )
    console.print(f"load it: {command}", soft_wrap=True, markup=False)  # one line, to copy


Seed = Annotated[int | None, typer.Option(help="Fixes every random choice (default: config).")]
ConfigFile = Annotated[
    Path | None,
    typer.Option(help="Training config JSON (default: RECSYS_TRAINING_CONFIG_FILE if it exists)."),
]


def _config(  # type: ignore[no-untyped-def]
    config_file: Path | None,
    seed: int | None,
    epochs: int | None = None,
    ranker_epochs: int | None = None,
):
    from training.config import load_config

    path = config_file or get_settings().training.config_file
    config, source = load_config(path, required=config_file is not None)
    console.print(f"training config: {source}")
    updates = {k: v for k, v in {"seed": seed, "epochs": epochs}.items() if v is not None}
    config = config.model_copy(update=updates)
    if ranker_epochs is not None:
        config.ranker = config.ranker.model_copy(update={"epochs": ranker_epochs})
    return config


RankerEpochs = Annotated[
    int | None, typer.Option(min=1, help="Passes of the ranking stage (default: the config's).")
]


def _report_resources(started: float, rows: int | None = None) -> None:
    """Wall time, throughput and the process's peak memory: what a scale check quotes."""
    import resource

    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    rate = f", {rows / max(seconds, 1e-9):,.0f} interactions/s" if rows else ""
    console.print(f"took {seconds:,.1f} s{rate}, peak memory {peak:,.0f} MiB")


@cli.command("train")
def train(
    epochs: Annotated[int | None, typer.Option(help="Passes over the training data.")] = None,
    ranker_epochs: RankerEpochs = None,
    seed: Seed = None,
    max_users: Annotated[
        int | None, typer.Option(help="Train on the first N users only (quick trials, tests).")
    ] = None,
    publish: Annotated[bool, typer.Option(help="Point the live version at the export.")] = True,
    config_file: ConfigFile = None,
) -> None:
    """Read the database, train both stages, evaluate as served, export and publish."""
    from training.pipeline import TrainingError, run
    from training.tracking import TrackingError

    started = time.perf_counter()
    config = _config(config_file, seed, epochs, ranker_epochs)
    try:
        folder = run(get_settings(), config, console=console, max_users=max_users, publish=publish)
    except (TrainingError, TrackingError) as exc:
        raise _fail(str(exc)) from None
    from app.manifest import read_manifest

    _report_resources(started, read_manifest(folder).row_counts.get("interactions"))


@cli.command("evaluate")
def evaluate(
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the report here.")] = None,
    chart: Annotated[
        Path | None, typer.Option(help="Write the HR@K chart (PNG) here (default: beside --json).")
    ] = None,
    seed: Seed = None,
    config_file: ConfigFile = None,
    publish: Annotated[bool, typer.Option(help="Make the evaluated version live.")] = False,
    max_users: Annotated[
        int | None, typer.Option(help="Evaluate on the first N users only (quick trials, tests).")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Passes over the training data.")] = None,
    ranker_epochs: RankerEpochs = None,
) -> None:
    """Every method on one temporal split: the served two-stage pipeline against
    popularity, EASE, ALS, the item-transition (sequence-aware) baseline and SVD, in one
    table (+ JSON and PNG). Works on whatever catalog is loaded; a baseline the catalog
    cannot support (EASE past its size, SVD without ratings) is skipped, with the reason."""
    from training.compare import run_evaluation
    from training.pipeline import TrainingError

    config = _config(config_file, seed, epochs, ranker_epochs)
    chart = chart or (json_path.with_suffix(".png") if json_path else None)
    try:
        run_evaluation(
            get_settings(),
            config,
            console=console,
            json_path=json_path,
            chart_path=chart,
            publish=publish,
            max_users=max_users,
        )
    except TrainingError as exc:
        raise _fail(str(exc)) from None


@cli.command("tune")
def tune(
    trials: Annotated[int, typer.Option(min=1, help="Most trials to run.")] = 20,
    timeout: Annotated[
        float, typer.Option(help="Stop starting trials after this many seconds.")
    ] = 1800,
    seed: Seed = None,
    output: Annotated[
        Path | None, typer.Option(help="Where to write the best config (default: the config file).")
    ] = None,
    max_users: Annotated[
        int | None, typer.Option(help="Tune on the first N users only (quick trials, tests).")
    ] = None,
) -> None:
    """Search training hyperparameters on the validation split (optuna), bounded in time;
    writes the best config where `recsys train` and `recsys evaluate` pick it up."""
    from training.pipeline import TrainingError
    from training.tune import run_tuning

    settings = get_settings()
    try:
        run_tuning(
            settings,
            _config(None, seed),
            trials=trials,
            timeout=timeout,
            output=output or settings.training.config_file,
            console=console,
            max_users=max_users,
        )
    except TrainingError as exc:
        raise _fail(str(exc)) from None


@cli.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Serve the live model version over HTTP (uvicorn)."""
    import uvicorn

    from app.logs import logging_config

    settings = get_settings()
    uvicorn.run(
        "app.main:app",
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level,
        log_config=logging_config(settings.log_level, settings.log_format),
        access_log=False,  # the app writes its own, structured, with the request id
        server_header=False,  # no software name in answers
        # Forwarded client addresses only from the configured proxies, not from anyone
        # who can reach the port (uvicorn's default trusts every loopback peer).
        proxy_headers=bool(settings.serving.trusted_proxies),
        forwarded_allow_ips=settings.serving.trusted_proxies or None,
    )


def _write_report(json_path: Path | None, report: dict) -> None:
    """A benchmark's figures as JSON, when --json asked for them."""
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2) + "\n")
        console.print(f"figures: {json_path}")


def _int_list(raw: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in raw.split(",") if v.strip())
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {raw!r}") from None
    if not values or min(values) < 1:
        raise typer.BadParameter("expected at least one positive integer")
    return values


# The benchmarks' --json option: every figure of the run, as JSON.
FiguresJson = Annotated[Path | None, typer.Option("--json", help="Write every figure here.")]


@bench_cli.command("serve")
def bench_serve(
    database: Annotated[
        list[str] | None,
        typer.Option(help="Database URL to serve from; repeat to compare (default: configured)."),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes.")] = 1,
    connections: Annotated[
        str, typer.Option(help="Comma-separated concurrent connections, one run each.")
    ] = "1,32",
    duration: Annotated[float, typer.Option(min=1, help="Seconds per run.")] = 15.0,
    warmup: Annotated[float, typer.Option(min=0, help="Untimed seconds per endpoint.")] = 3.0,
    items: Annotated[
        int | None,
        typer.Option(
            min=100,
            help="Serve a synthetic catalog of this many items instead (own database and "
            "artifacts, generated, trained briefly and published on first use).",
        ),
    ] = None,
    users: Annotated[int, typer.Option(min=10, help="Synthetic users (with --items).")] = 5000,
    interactions: Annotated[
        int, typer.Option(min=100, help="About this many synthetic interactions (with --items).")
    ] = 250_000,
    json_path: FiguresJson = None,
) -> None:
    """Serve the live version with uvicorn and drive it with wrk: req/s, p50/p95/p99 and
    errors per endpoint, each beside a bare reference route measured in the same run."""
    from training.bench.serve import Plan, run_bench
    from training.bench.server import ServerError
    from training.bench.wrk import LoadGeneratorError

    settings = get_settings()
    databases, artifacts_dir = database or [settings.database.url], settings.artifacts.dir
    if items is not None:
        from training.bench.scale import Scale, prepare

        scale = Scale(items, users, interactions, folder=Path("var/bench"))
        url, artifacts_dir = prepare(scale, databases[0], console)
        databases = [url]
    plan = Plan(
        databases=databases,
        artifacts_dir=artifacts_dir.resolve(),
        workers=workers,
        connections=_int_list(connections),
        seconds=duration,
        warmup_seconds=warmup,
    )
    try:
        report = run_bench(plan, console)
    except (ServerError, LoadGeneratorError, RuntimeError) as exc:
        raise _fail(str(exc)) from None
    _write_report(json_path, report)


@bench_cli.command("swap")
def bench_swap(
    versions: Annotated[int, typer.Option(min=1, help="Versions published one by one.")] = 20,
    clients: Annotated[int, typer.Option(min=1, help="Concurrent clients.")] = 8,
    steady: Annotated[float, typer.Option(min=1, help="Seconds of load before swapping.")] = 10,
    json_path: FiguresJson = None,
) -> None:
    """Publish copies of the live version one after another while clients keep asking:
    failures, p99 steady against during the swaps, memory after the first and last swap."""
    from training.bench.server import ServerError
    from training.bench.swap import SwapPlan, print_report, run_swap_bench

    settings = get_settings()
    plan = SwapPlan(
        settings.database.url, settings.artifacts.dir.resolve(), versions, clients, steady
    )
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("swapping versions", total=versions)
        try:
            report = run_swap_bench(plan, lambda done, _: progress.update(task, completed=done))
        except (ServerError, RuntimeError) as exc:
            raise _fail(str(exc)) from None
    print_report(console, report)
    _write_report(json_path, report)


@bench_cli.command("outage")
def bench_outage(
    steady: Annotated[float, typer.Option(min=1, help="Seconds of steady load.")] = 10,
    json_path: FiguresJson = None,
) -> None:
    """The native stack (throwaway PostgreSQL, two instances, nginx) with the live
    version: p99 steady against p99 while the database is paused, then stopped."""
    from training.bench.faults import OutagePlan, print_outage, run_outage_bench

    settings = get_settings()
    plan = OutagePlan(settings.movielens.dir, settings.artifacts.dir.resolve(), 24, steady)
    _fault_bench(lambda: run_outage_bench(plan, console.print), print_outage, json_path)


@bench_cli.command("overload")
def bench_overload(
    bound: Annotated[int, typer.Option(min=1, help="In-flight bound for the bounded run.")] = 32,
    clients: Annotated[int, typer.Option(min=2, help="wrk connections.")] = 256,
    json_path: FiguresJson = None,
) -> None:
    """One instance past its in-flight bound, then without it: refusals (503) and the
    latency of the requests it admitted, from its own histograms."""
    from training.bench.faults import OverloadPlan, print_overload, run_overload_bench

    plan = OverloadPlan(get_settings().database.url, bound, clients)
    _fault_bench(lambda: run_overload_bench(plan, console.print), print_overload, json_path)


def _fault_bench(run, show, json_path: Path | None) -> None:  # type: ignore[no-untyped-def]
    try:
        report = run()
    except RuntimeError as exc:  # the stack, the cluster or wrk failed: its message says why
        raise _fail(str(exc)) from None
    show(console, report)
    _write_report(json_path, report)


@bench_cli.command("index")
def bench_index(
    items: Annotated[int, typer.Option(min=64, help="Synthetic catalog size.")] = 1_000_000,
    dim: Annotated[int, typer.Option(min=2, help="Embedding dimension.")] = 64,
    queries: Annotated[int, typer.Option(min=1, help="Timed queries.")] = 1000,
    k: Annotated[int, typer.Option(min=1, help="Neighbours per query.")] = 10,
    batch: Annotated[int, typer.Option(min=1, help="Queries per batched search.")] = 256,
    seed: Annotated[int, typer.Option(help="Fixes the catalog and the queries.")] = 0,
    mode: Annotated[
        str | None, typer.Option(help="auto, brute_force, ah or tree_ah (default: config).")
    ] = None,
    leaves: Annotated[
        int | None, typer.Option(min=2, help="Tree leaves (default: config, about sqrt(items)).")
    ] = None,
    leaves_to_search: Annotated[
        float | None,
        typer.Option(min=0.0001, max=1.0, help="Share of the leaves a query searches, at most."),
    ] = None,
    target_recall: Annotated[
        float | None,
        typer.Option(
            min=0.0001,
            max=1.0,
            help="Search the fewest leaves keeping this recall@k on separate queries "
            "(default: config).",
        ),
    ] = None,
    reorder: Annotated[
        int | None, typer.Option(min=1, help="Candidates re-scored exactly (default: config).")
    ] = None,
    config_file: ConfigFile = None,
    json_path: FiguresJson = None,
) -> None:
    """Build the export's ScaNN index over a structured synthetic catalog and time it
    against exact numpy search in the same run: build time, size, memory, latency
    (single and batched), recall@k, speedup."""
    from pydantic import ValidationError

    from training.bench.index import Plan, run_bench
    from training.config import IndexConfig

    knobs = {
        "mode": mode,
        "num_leaves": leaves,
        "leaves_to_search_fraction": leaves_to_search,
        "reorder_num_neighbors": reorder,
        "target_recall": target_recall,
    }
    updates = {name: value for name, value in knobs.items() if value is not None}
    try:  # the index settings `recsys train` would use, with the options above on top
        index = IndexConfig.model_validate(_config(config_file, None).index.model_dump() | updates)
    except ValidationError as exc:
        raise _fail(str(exc)) from None
    plan = Plan(items=items, dim=dim, queries=queries, k=k, batch=batch, seed=seed, index=index)
    report = run_bench(plan, console)
    _write_report(json_path, report)


def main() -> None:
    cli()
