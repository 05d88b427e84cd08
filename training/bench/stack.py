"""The deployed stack, natively: what docker-compose runs, with the same commands and
the same nginx config, on a machine without Docker.

    postgres   a throwaway cluster (its own folder and port; training/bench/pgcluster.py)
    migrate    recsys db upgrade
    load       recsys data load
    train      recsys train [args]        (skipped when given a trained artifacts folder)
    api        recsys serve, N instances   (one process each, like compose's replicas)
    nginx      nginx/templates/recsys.conf.template in front of them

Used by the stack test (tests/e2e/test_stack.py) and `recsys bench outage`.
"""

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from training.bench.nginx import Limits, run_nginx
from training.bench.pgcluster import Cluster, throwaway_cluster
from training.bench.server import Server, free_port, run_servers

JOB_TIMEOUT_SECONDS = 900


class StackError(RuntimeError):
    """A step of the stack failed; the message names it and carries its output."""


@dataclass(frozen=True)
class Stack:
    base: str  # nginx, where clients go
    instances: list[Server]
    cluster: Cluster
    env: dict[str, str]  # what every step ran with
    nginx_dir: Path  # its config, access.log and error.log


@contextmanager
def native_stack(
    workdir: Path,
    *,
    movielens_dir: Path | None,
    instances: int = 2,
    train_args: tuple[str, ...] = (),
    artifacts: Path | None = None,
    limits: Limits | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """Bring the stack up in compose's order, yield it, take it down (cluster removed)."""
    workdir.mkdir(parents=True, exist_ok=True)
    with throwaway_cluster() as cluster:
        stack_env = {
            "RECSYS_DATABASE_URL": cluster.url,
            "RECSYS_ARTIFACTS_DIR": str(artifacts or workdir / "artifacts"),
            # nginx on loopback is the proxy in front, as the compose network is.
            "RECSYS_SERVING_TRUSTED_PROXIES": "127.0.0.1",
            **(env or {}),
        }
        if movielens_dir is not None:  # else `recsys data load` reads its download folder
            stack_env["RECSYS_MOVIELENS_DIR"] = str(movielens_dir)
        job(["db", "upgrade"], stack_env, workdir / "migrate.log")
        job(["data", "load"], stack_env, workdir / "load.log")
        if artifacts is None:
            job(["train", *train_args], stack_env, workdir / "train.log")
        logs = [workdir / f"api-{n}.log" for n in range(instances)]
        with run_servers([stack_env] * instances, logs) as servers:
            upstreams = [server.base.removeprefix("http://") for server in servers]
            nginx_dir = workdir / "nginx"
            with run_nginx(upstreams, free_port(), nginx_dir, limits) as base:
                yield Stack(base, servers, cluster, stack_env, nginx_dir)


def job(args: list[str], env: dict[str, str], log: Path) -> None:
    """One `recsys` one-shot job, as compose's migrate/load/train run it; must exit 0."""
    command = [sys.executable, "-m", "training", *args]
    with log.open("w") as out:
        done = subprocess.run(
            command,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=JOB_TIMEOUT_SECONDS,
            check=False,
        )
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise StackError(f"recsys {' '.join(args)} exited with {done.returncode}:\n{tail}")
