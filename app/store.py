"""The artifacts folder: which versions are published, which one is live, any A/B split.

Read by the app's registry; written by `recsys train` (publish) and `recsys models`
(promote, split, prune). Every pointer is replaced atomically (write, then rename), so a
reader sees the old value or the new one, never half of either.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

from app.manifest import LIVE_POINTER, MANIFEST, SPLIT_FILE, ManifestError, read_manifest


class ArtifactError(RuntimeError):
    """No usable version: the message says which file and what to do."""


@dataclass(frozen=True)
class Split:
    """A/B: `share` of users (by a hash of their id) get `candidate`, the rest the live one."""

    candidate: str
    share: float

    def __post_init__(self) -> None:
        if not self.candidate or not 0.0 < self.share < 1.0:
            raise ValueError(f"a split needs a candidate and a share in (0, 1), not {self}")


def live_name(artifacts_dir: Path) -> str:
    pointer = artifacts_dir / LIVE_POINTER
    try:
        name = pointer.read_text().strip()
    except FileNotFoundError:
        raise ArtifactError(
            f"no published model version in {artifacts_dir.resolve()} (missing {LIVE_POINTER}): "
            "run `recsys train` first"
        ) from None
    if not name or "/" in name or name.startswith("."):
        raise ArtifactError(f"{pointer}: does not name a version ({name!r})")
    return name


def live_or_none(artifacts_dir: Path) -> str | None:
    """What LIVE names, or None when nothing (valid) is published."""
    try:
        return live_name(artifacts_dir)
    except ArtifactError:
        return None


def read_split(artifacts_dir: Path) -> Split | None:
    path = artifacts_dir / SPLIT_FILE
    try:
        raw = json.loads(path.read_text())
        return Split(candidate=str(raw["candidate"]), share=float(raw["share"]))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{path}: not a split ({exc}); expected {{candidate, share}}") from None


def set_live(artifacts_dir: Path, version: str) -> None:
    _replace(artifacts_dir / LIVE_POINTER, version + "\n")


def set_split(artifacts_dir: Path, split: Split | None) -> None:
    if split is None:
        (artifacts_dir / SPLIT_FILE).unlink(missing_ok=True)
    else:
        body = json.dumps({"candidate": split.candidate, "share": split.share})
        _replace(artifacts_dir / SPLIT_FILE, body + "\n")


def _replace(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)  # atomic on one filesystem


def published(artifacts_dir: Path) -> list[tuple[str, str]]:
    """(name, created_at) of each published version folder, newest first (created_at ""
    when its manifest is unreadable: those sort last). Staging folders are not published."""
    entries = []
    for folder in artifacts_dir.iterdir() if artifacts_dir.is_dir() else []:
        if folder.name.startswith(".") or not (folder / MANIFEST).is_file():
            continue
        try:
            created = read_manifest(folder).created_at
        except ManifestError:
            created = ""
        entries.append((created, folder.name))
    return [(name, created) for created, name in sorted(entries, reverse=True)]


def older_than(artifacts_dir: Path, version: str) -> list[str]:
    """Published versions created before `version`, newest first (all others when its
    own creation time cannot be read)."""
    versions = published(artifacts_dir)
    created = dict(versions).get(version, "")
    return [name for name, when in versions if name != version and (not created or when < created)]
