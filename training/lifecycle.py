"""`recsys models`: list, promote (and so roll back), split and prune published versions.

Commands only move pointers (LIVE, SPLIT) and delete folders that nothing serves; a
running service follows the pointers by itself (polling, POST /admin/reload or SIGHUP)
and loads, verifies and warms a version before it takes traffic.
"""

import shutil
from dataclasses import dataclass
from pathlib import Path

from app.artifacts import verify_checksums
from app.manifest import Manifest, ManifestError, read_manifest
from app.store import ArtifactError, Split, live_or_none, published, read_split, set_live, set_split


class LifecycleError(RuntimeError):
    """A command that would leave the service without a good version: nothing changed."""


@dataclass(frozen=True)
class VersionInfo:
    name: str
    created: str
    manifest: Manifest | None
    problem: str | None  # why it does not verify (None: it does)
    live: bool
    candidate: bool


def describe(artifacts_dir: Path, *, verify: bool = True) -> list[VersionInfo]:
    """Every published version, newest first, with whether it verifies."""
    pointer = live_or_none(artifacts_dir)
    split = _split_or_none(artifacts_dir)
    infos = []
    for name, created in published(artifacts_dir):
        manifest, problem = _check(artifacts_dir / name, verify)
        candidate = split is not None and split.candidate == name
        infos.append(VersionInfo(name, created, manifest, problem, name == pointer, candidate))
    return infos


def promote(artifacts_dir: Path, version: str) -> None:
    """Make `version` live (rolling back is promoting an older one); ends any split."""
    _require_good(artifacts_dir, version)
    set_live(artifacts_dir, version)
    set_split(artifacts_dir, None)


def start_split(artifacts_dir: Path, candidate: str, share: float) -> Split:
    """Send `share` of users (sticky by user id) to `candidate`, the rest to the live one."""
    if candidate == live_or_none(artifacts_dir):
        raise LifecycleError(f"{candidate} is already live: a split needs another version")
    _require_good(artifacts_dir, candidate)
    try:
        split = Split(candidate, share)
    except ValueError as exc:
        raise LifecycleError(str(exc)) from None
    set_split(artifacts_dir, split)
    return split


def end_split(artifacts_dir: Path) -> None:
    set_split(artifacts_dir, None)


def prune(artifacts_dir: Path, keep: int, *, dry_run: bool = False) -> list[str]:
    """Delete all but the `keep` newest versions, never the live one nor a split's
    candidate; returns the names deleted (or that would be, with dry_run)."""
    if keep < 1:
        raise LifecycleError("--keep must be at least 1")
    protected = {live_or_none(artifacts_dir)}
    if split := _split_or_none(artifacts_dir):
        protected.add(split.candidate)
    names = [name for name, _ in published(artifacts_dir)]
    doomed = [name for name in names[keep:] if name not in protected]
    for name in doomed if not dry_run else ():
        shutil.rmtree(artifacts_dir / name)
    return doomed


def _require_good(artifacts_dir: Path, version: str) -> None:
    folder = artifacts_dir / version
    if "/" in version or version.startswith(".") or not folder.is_dir():
        known = ", ".join(name for name, _ in published(artifacts_dir)) or "none"
        raise LifecycleError(f"no published version {version!r} in {artifacts_dir} ({known})")
    _, problem = _check(folder, verify=True)
    if problem:
        raise LifecycleError(f"{version} does not verify, nothing changed: {problem}")


def _check(folder: Path, verify: bool) -> tuple[Manifest | None, str | None]:
    try:
        manifest = read_manifest(folder)
    except ManifestError as exc:
        return None, str(exc)
    try:
        if verify:
            verify_checksums(folder, manifest.files)
    except ArtifactError as exc:
        return manifest, str(exc)
    return manifest, None


def _split_or_none(artifacts_dir: Path) -> Split | None:
    try:
        return read_split(artifacts_dir)
    except ArtifactError:
        return None
