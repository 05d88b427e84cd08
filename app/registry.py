"""The ModelRegistry: which versions serve, loaded and verified before they can.

It follows the artifacts folder (the LIVE pointer and an optional SPLIT): a version is
loaded completely off the event loop, checked, warmed up, and only then published to
requests by replacing one immutable `Assignment`. A request reads the assignment once
and finishes on the version it chose, so a swap never touches a request in flight.
A version that fails is refused (logged, shown in /healthz) and the running one keeps
serving; it is retried only when its folder changes.
"""

import asyncio
import contextlib
import hashlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from app import metrics
from app.artifacts import load_version
from app.loading import collect_all, folder_stamp, loading, lowest_priority
from app.store import ArtifactError, Split, live_name, live_or_none, older_than, read_split
from app.version import ModelVersion

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Assignment:
    """What serves now: the live version and, during an A/B test, a candidate."""

    live: ModelVersion
    candidate: ModelVersion | None = None
    share: float = 0.0

    def choose(self, user_id: str) -> ModelVersion:
        """Sticky per user: the same id always lands on the same side of one split."""
        if self.candidate is None or _bucket(self.candidate.version, user_id) >= self.share:
            return self.live
        return self.candidate

    @property
    def names(self) -> tuple[str, str | None, float]:
        return self.live.version, self.candidate.version if self.candidate else None, self.share


def _bucket(salt: str, user_id: str) -> float:
    """A stable number in [0, 1) per (experiment, user): a new candidate reshuffles users."""
    digest = hashlib.blake2b(f"{salt}\0{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True)
class Refusal:
    version: str
    reason: str
    at: float  # time.time()
    stamp: tuple  # the folder's files when refused: retried only once they change


class ModelRegistry:
    def __init__(
        self, artifacts_dir: Path, *, verify: bool = True, warm=None, search_threads: int = 1
    ):  # type: ignore[no-untyped-def]
        self.artifacts_dir, self.verify, self._warm = artifacts_dir, verify, warm
        self.search_threads = search_threads
        self.current: Assignment | None = None
        self.refused: dict[str, Refusal] = {}
        self.swaps = 0
        self.release_seconds = 1.0  # a replaced version's requests finish well within this
        self._lock = asyncio.Lock()
        self._collector: asyncio.Task | None = None
        # One background thread, at the lowest CPU priority, loads new versions.
        self._loader = ThreadPoolExecutor(1, "model-loader", initializer=lowest_priority)

    @property
    def assignment(self) -> Assignment:
        if self.current is None:
            raise RuntimeError("the registry has no version yet: call start() first")
        return self.current

    def start(self) -> Assignment:
        """The first assignment (blocking; run off the loop). An unusable live version
        falls back to the newest older one that loads; none at all raises ArtifactError."""
        wanted = live_name(self.artifacts_dir)
        live = self._try_load(wanted, serving=False) or self._fallback(wanted)
        self.current = self._with_split(live, None)
        metrics.show_versions(*self.current.names[:2])
        return self.current

    async def refresh(self) -> bool:
        """Follow the folder's pointers now; True when what serves changed."""
        async with self._lock:
            before = self.assignment
            loop = asyncio.get_running_loop()
            after = await loop.run_in_executor(self._loader, self._next, before)
            if after.names == before.names:
                return False
            self.current = after
            self.swaps += 1
            metrics.MODEL_SWAPS.inc()
            metrics.show_versions(*after.names[:2])
            self._collect_later()
            log.info("now serving %s (candidate %s, share %.2f)", *after.names)
            return True

    async def watch(self, interval: float) -> None:
        """Poll the pointers every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except Exception:  # a bad poll must not end polling
                log.exception("reloading model versions failed; still serving %s", self.live)

    def _collect_later(self) -> None:
        """Collect the replaced version once requests in flight on it are done: one full
        collection per swap, off the event loop (see app.loading.collect_all)."""
        if self._collector is None or self._collector.done():
            self._collector = asyncio.get_running_loop().create_task(self._collect_after())

    async def _collect_after(self) -> None:
        await asyncio.sleep(self.release_seconds)
        await asyncio.to_thread(collect_all)

    async def stop(self) -> None:
        if self._collector is not None:
            self._collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._collector
        self._loader.shutdown(wait=False, cancel_futures=True)

    @property
    def live(self) -> str:
        return self.assignment.live.version

    def describe(self, recent: int = 10) -> dict:
        """What serves, what LIVE names and the latest refusals (for /healthz and reloads)."""
        now = self.assignment
        pointer = live_or_none(self.artifacts_dir)
        refusals = sorted(self.refused.values(), key=lambda r: r.at)[-recent:]
        return {
            "model_version": now.live.version,
            "live_pointer": pointer,
            "candidate_version": now.candidate.version if now.candidate else None,
            "candidate_share": now.share if now.candidate else None,
            "refused": [
                {"version": r.version, "reason": r.reason, "refused_at": _iso(r.at)}
                for r in refusals
            ],
        }

    def _next(self, now: Assignment) -> Assignment:
        wanted = live_name(self.artifacts_dir)
        live = self._reuse(now, wanted) or self._try_load(wanted, serving=True) or now.live
        return self._with_split(live, now)

    def _with_split(self, live: ModelVersion, now: Assignment | None) -> Assignment:
        try:
            split: Split | None = read_split(self.artifacts_dir)
        except ArtifactError as exc:
            log.error("ignoring the A/B split: %s", exc)
            split = None
        if split is None or split.candidate == live.version:
            return Assignment(live)
        candidate = (now and self._reuse(now, split.candidate)) or self._try_load(
            split.candidate, serving=now is not None
        )
        return Assignment(live, candidate, split.share) if candidate else Assignment(live)

    @staticmethod
    def _reuse(now: Assignment, name: str) -> ModelVersion | None:
        for version in (now.live, now.candidate):
            if version is not None and version.version == name:
                return version
        return None

    def _try_load(self, name: str, *, serving: bool) -> ModelVersion | None:
        """The version, or None once refused. `serving`: requests are being answered
        meanwhile, so the version is warmed up before it takes them, and loaded politely."""
        stamp = folder_stamp(self.artifacts_dir / name)
        known = self.refused.get(name)
        if known is not None and known.stamp == stamp:
            return None  # refused before and unchanged since: not worth another load
        try:
            with loading(polite=serving):
                version = load_version(
                    self.artifacts_dir, name, verify=self.verify, search_threads=self.search_threads
                )
                if serving and self._warm is not None:
                    self._warm(version)
        except Exception as exc:  # any failure of a version keeps it out, not the service
            reason = str(exc) if isinstance(exc, ArtifactError) else f"{type(exc).__name__}: {exc}"
            self.refused[name] = Refusal(name, reason, time.time(), stamp)
            log.error("refused model version %s: %s", name, reason)
            metrics.MODEL_LOADS.labels("refused").inc()
            return None
        self.refused.pop(name, None)
        metrics.MODEL_LOADS.labels("loaded").inc()
        return version

    def _fallback(self, wanted: str) -> ModelVersion:
        for name in older_than(self.artifacts_dir, wanted):
            if version := self._try_load(name, serving=False):
                log.critical(
                    "LIVE names %s, which cannot be served (%s); serving the older version %s "
                    "instead until a good version is published or promoted",
                    wanted, self.refused[wanted].reason, name,
                )  # fmt: skip
                return version
        reasons = "; ".join(f"{r.version}: {r.reason}" for r in self.refused.values())
        raise ArtifactError(f"no model version in {self.artifacts_dir} can be served ({reasons})")


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
