"""`recsys models ...`: the version lifecycle from the command line (see lifecycle.py)."""

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from app.settings import get_settings
from training import lifecycle

console = Console(width=None if sys.stdout.isatty() else 150)
models_cli = typer.Typer(
    help="Published model versions: list, promote or roll back, A/B split, prune.",
    no_args_is_help=True,
)
Version = Annotated[str, typer.Argument(help="A version name, as `recsys models list` shows.")]


def _run(action, *args, **kwargs):  # type: ignore[no-untyped-def]
    try:
        return action(get_settings().artifacts.dir, *args, **kwargs)
    except lifecycle.LifecycleError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=1) from None


@models_cli.command("list")
def list_versions(
    verify: Annotated[bool, typer.Option(help="Check every file's checksum.")] = True,
) -> None:
    """Versions newest first: created, served HR@10 / NDCG@10, live or candidate, verified."""
    table = Table(title=str(get_settings().artifacts.dir))
    for header in ("version", "created", "HR@10", "NDCG@10", "serving", "verified"):
        table.add_column(header)
    for info in _run(lifecycle.describe, verify=verify):
        metrics = [info.manifest.served_metric(m) if info.manifest else None for m in METRICS]
        role = "live" if info.live else "candidate" if info.candidate else ""
        check = "yes" if not info.problem else f"[red]no[/red]: {info.problem}"
        if not verify and not info.problem:
            check = "not checked"
        shown = [f"{v:.4f}" if v is not None else "-" for v in metrics]
        table.add_row(info.name, info.created, *shown, role, check)
    console.print(table)


METRICS = ("hr@10", "ndcg@10")


@models_cli.command("promote")
def promote(version: Version) -> None:
    """Make VERSION live after verifying it (an older one: a rollback); ends any split."""
    _run(lifecycle.promote, version)
    console.print(f"{version} is live; running services pick it up at their next poll")


@models_cli.command("split")
def split(
    version: Annotated[str | None, typer.Argument(help="The candidate version.")] = None,
    share: Annotated[float, typer.Option(help="Share of users sent to the candidate.")] = 0.1,
    end: Annotated[bool, typer.Option("--end", help="End the split: all users on live.")] = False,
) -> None:
    """A/B test: SHARE of users (sticky, by a hash of the user id) get VERSION."""
    if end:
        _run(lifecycle.end_split)
        console.print("split ended: every user gets the live version")
        return
    if version is None:
        raise typer.BadParameter("name the candidate version, or pass --end")
    chosen = _run(lifecycle.start_split, version, share)
    console.print(f"{chosen.share:.0%} of users now get {chosen.candidate}")


@models_cli.command("prune")
def prune(
    keep: Annotated[int, typer.Option(min=1, help="Newest versions to keep.")] = 5,
    dry_run: Annotated[bool, typer.Option(help="Only say what would be deleted.")] = False,
) -> None:
    """Delete old versions, keeping the KEEP newest, the live one and a split's candidate."""
    doomed = _run(lifecycle.prune, keep, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    console.print(f"{verb} {len(doomed)} version(s)" + "".join(f"\n  {n}" for n in doomed))
