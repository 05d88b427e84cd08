"""The `recsys` command line: migrations, data, training and serving."""

import asyncio
import os
from pathlib import Path
from typing import Annotated

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # TFRS needs tf-keras, not Keras 3
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402

from app.settings import get_settings  # noqa: E402

console = Console()
cli = typer.Typer(help="Two-tower recommendation service.", no_args_is_help=True)
db_cli = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
data_cli = typer.Typer(
    help="MovieLens 100K: fetch and load into the database.", no_args_is_help=True
)
cli.add_typer(db_cli, name="db")
cli.add_typer(data_cli, name="data")

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


@data_cli.command("load")
def data_load(movielens_dir: MovieLensDir = None) -> None:
    """Load users, items and interactions into the database (idempotent, all or nothing)."""
    from training.movielens import MovieLensError, read_movielens

    settings = get_settings()
    folder = movielens_dir or settings.movielens.dir or settings.movielens.download_dir / "ml-100k"
    try:
        data = read_movielens(folder)
    except (MovieLensError, OSError) as exc:
        raise _fail(str(exc)) from None
    counts = asyncio.run(_load(data))
    console.print("rows now in the database: " + ", ".join(f"{k}={v}" for k, v in counts.items()))


async def _load(data) -> dict[str, int]:  # type: ignore[no-untyped-def]
    from app.db.engine import create_engine
    from training.load import load_movielens

    engine = create_engine(get_settings().database)
    sizes = {
        "users": len(data.users),
        "items": len(data.items),
        "interactions": len(data.interactions),
    }
    try:
        with Progress(console=console) as progress:
            tasks = {
                name: progress.add_task(f"loading {name}", total=n) for name, n in sizes.items()
            }
            return await load_movielens(
                engine, data, on_batch=lambda table, n: progress.advance(tasks[table], n)
            )
    finally:
        await engine.dispose()


@cli.command("train")
def train(
    epochs: Annotated[int | None, typer.Option(help="Passes over the training data.")] = None,
    seed: Annotated[int, typer.Option(help="Fixes every random choice, for repeatable runs.")] = 42,
    max_users: Annotated[
        int | None, typer.Option(help="Train on the first N users only (quick trials, tests).")
    ] = None,
    publish: Annotated[bool, typer.Option(help="Point the live version at the export.")] = True,
) -> None:
    """Read the database, train the two-tower model, evaluate, export and publish a version."""
    from training.config import TrainConfig
    from training.pipeline import TrainingError, run

    config = TrainConfig(seed=seed)
    if epochs is not None:
        config = config.model_copy(update={"epochs": epochs})
    try:
        run(get_settings(), config, console=console, max_users=max_users, publish=publish)
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

    uvicorn.run(
        "app.main:app",
        host=host,
        port=port,
        workers=workers,
        log_level=get_settings().log_level,
        proxy_headers=True,
    )


def main() -> None:
    cli()
