"""`recsys bench swap`: new versions go live one after another under steady load.

A real `recsys serve` follows a private copy of the artifacts folder. Client tasks (in
this process, one connection each) request random known users without pause: first for a
steady period, then while versions are published one by one (each a full copy of the
live one under a new name, as `recsys train` publishes), each awaited until the service
reports it. Printed, from that one run: failures, p50/p99 steady and during the swaps,
whether every answer named a version that was live, and the server's memory after the
first swap and after the last.
"""

import asyncio
import operator
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np

from app.manifest import STAGING_PREFIX, read_manifest
from app.store import live_name, set_live
from training.bench.asking import Answer, asking
from training.bench.serve import sample_users
from training.bench.server import run_server


@dataclass(frozen=True)
class SwapPlan:
    database_url: str
    artifacts_dir: Path  # its live version is the one cloned
    versions: int = 20
    clients: int = 8
    steady_seconds: float = 10.0
    poll_seconds: float = 0.2


@dataclass
class Timeline:
    published: dict[str, float] = field(default_factory=dict)  # version -> when LIVE named it
    picked_up: dict[str, float] = field(default_factory=dict)  # version -> when it served
    memory_mb: list[float] = field(default_factory=list)  # server RSS after each swap


def clone_version(artifacts_dir: Path, source: Path, name: str) -> Path:
    """A copy of a published version under a new name and creation time, published
    (renamed into place) but not live."""
    staging = artifacts_dir / f"{STAGING_PREFIX}{name}"
    shutil.copytree(source, staging)
    manifest = read_manifest(staging)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    manifest.model_copy(update={"version": name, "created_at": created}).write(staging)
    final = artifacts_dir / name
    staging.rename(final)
    return final


def run_swap_bench(plan: SwapPlan, progress=None) -> dict:  # type: ignore[no-untyped-def]
    users = asyncio.run(sample_users(plan.database_url, 1000))
    if not users:
        raise RuntimeError("the database holds no interactions: load data first")
    with tempfile.TemporaryDirectory(prefix="recsys-swap-") as tmp:
        store = Path(tmp) / "artifacts"
        store.mkdir()
        base = live_name(plan.artifacts_dir)
        shutil.copytree(plan.artifacts_dir / base, store / base)
        set_live(store, base)
        env = {
            "RECSYS_DATABASE_URL": plan.database_url,
            "RECSYS_ARTIFACTS_DIR": str(store),
            "RECSYS_ARTIFACTS_POLL_SECONDS": str(plan.poll_seconds),
        }
        with run_server(env, Path(tmp) / "server.log") as server:
            answers, timeline, swap_start = asyncio.run(
                _drive(server.base, server.process.pid, store, base, plan, users, progress)
            )
    return summarise(answers, timeline, swap_start, plan)


async def _drive(base_url, pid, store, base, plan, users, progress):  # type: ignore[no-untyped-def]
    version = operator.itemgetter("model_version")
    async with asking(base_url, users, plan.clients, version) as (client, answers):
        await asyncio.sleep(plan.steady_seconds)
        swap_start = time.monotonic()
        timeline = Timeline(published={base: 0.0})
        source = store / base
        for n in range(plan.versions):
            name = f"{base}-swap{n + 1:03d}"
            await asyncio.to_thread(clone_version, store, source, name)
            timeline.published[name] = time.monotonic()
            set_live(store, name)
            await _await_version(client, name, timeline)
            timeline.memory_mb.append(rss_mb(pid))
            if progress:
                progress(n + 1, plan.versions)
        await asyncio.sleep(1.0)  # answers in flight at the last swap
    return answers, timeline, swap_start


async def _await_version(client: httpx.AsyncClient, name: str, timeline: Timeline) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        health = (await client.get("/healthz")).json()
        if health.get("model_version") == name:
            timeline.picked_up[name] = time.monotonic()
            return
        if any(r["version"] == name for r in health.get("refused", [])):
            raise RuntimeError(f"the service refused {name}: {health['refused']}")
        await asyncio.sleep(0.02)
    raise RuntimeError(f"{name} was not picked up within 120 s")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def summarise(answers: list[Answer], timeline: Timeline, swap_start: float, plan: SwapPlan) -> dict:
    steady = _latency([a for a in answers if a.started < swap_start])
    swapping = _latency([a for a in answers if a.started >= swap_start])
    pickups = [timeline.picked_up[n] - timeline.published[n] for n in timeline.picked_up]
    memory = timeline.memory_mb
    return {
        "plan": {"versions": plan.versions, "clients": plan.clients, "steady": plan.steady_seconds},
        "requests": len(answers),
        "failed": sum(a.status != 200 for a in answers),
        "invalid_versions": invalid_versions(answers, timeline),
        "versions_served": len({a.value for a in answers if a.value}),
        "steady": steady,
        "swapping": swapping,
        "p99_ratio": round(swapping["p99_ms"] / max(steady["p99_ms"], 1e-9), 2),
        "pickup_seconds": {
            "mean": round(float(np.mean(pickups)), 2),
            "max": round(max(pickups), 2),
        },
        "memory_mb": {"after_first": round(memory[0], 1), "after_last": round(memory[-1], 1)},
        "memory_growth": round(memory[-1] / memory[0] - 1, 4),
    }


def invalid_versions(answers: list[Answer], timeline: Timeline) -> int:
    """Answers naming a version not published yet when they arrived, or older than one
    the same client was already answered by (versions only move forward here)."""
    order = {name: i for i, name in enumerate(timeline.published)}
    newest: dict[int, int] = {}
    invalid = 0
    for answer in sorted((a for a in answers if a.status == 200), key=lambda a: a.ended):
        index = order.get(answer.value or "", -1)
        published = timeline.published.get(answer.value or "", float("inf"))
        if index < newest.get(answer.client, 0) or published > answer.ended:
            invalid += 1
        newest[answer.client] = max(index, newest.get(answer.client, 0))
    return invalid


def _latency(answers: list[Answer]) -> dict:
    ms = np.array([(a.ended - a.started) * 1000 for a in answers]) if answers else np.zeros(1)
    return {
        "requests": len(answers),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "max_ms": round(float(ms.max()), 2),
    }


def print_report(console, report: dict) -> None:  # type: ignore[no-untyped-def]
    steady, swapping = report["steady"], report["swapping"]
    memory = report["memory_mb"]
    console.print(
        f"{report['plan']['versions']} versions swapped in under {report['plan']['clients']} "
        f"clients: {report['requests']:,} requests, {report['failed']} failed, "
        f"{report['invalid_versions']} naming a version that was not live"
    )
    console.print(
        f"p50/p99 steady {steady['p50_ms']:.1f}/{steady['p99_ms']:.1f} ms, during swaps "
        f"{swapping['p50_ms']:.1f}/{swapping['p99_ms']:.1f} ms "
        f"(p99 {report['p99_ratio']:.2f}x steady)"
    )
    console.print(
        f"picked up {report['pickup_seconds']['mean']:.2f} s after publishing on average "
        f"(max {report['pickup_seconds']['max']:.2f} s); server memory "
        f"{memory['after_first']:.0f} MB after the first swap, {memory['after_last']:.0f} MB "
        f"after the last ({report['memory_growth']:+.1%})"
    )
