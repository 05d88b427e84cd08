"""A real `recsys serve` process (uvicorn) for benchmarks: started, awaited, stopped."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


class ServerError(RuntimeError):
    """The server exited or never became ready; the message carries its log's tail."""


@dataclass(frozen=True)
class Server:
    base: str
    process: subprocess.Popen
    log: Path


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def run_server(
    env: dict[str, str], log: Path, *, workers: int = 1, timeout: float = 300.0
) -> Iterator[Server]:
    """`recsys serve` on a free loopback port with `env` added; stopped on the way out.

    Its output goes to `log` (a pipe nobody reads would block the server once full).
    """
    with run_servers([env], [log], workers=workers, timeout=timeout) as (server,):
        yield server


@contextmanager
def run_servers(
    envs: list[dict[str, str]], logs: list[Path], *, workers: int = 1, timeout: float = 300.0
) -> Iterator[list[Server]]:
    """Several `recsys serve` processes, started together (each imports TensorFlow and
    loads its version at the same time) and stopped on the way out."""
    servers: list[Server] = []
    try:
        for env, log in zip(envs, logs, strict=True):
            servers.append(start(env, log, workers))
        for server in servers:
            wait_ready(server, timeout)
        yield servers
    finally:
        for server in servers:
            stop(server.process)


def start(env: dict[str, str], log: Path, workers: int = 1) -> Server:
    port = free_port()
    command = [sys.executable, "-m", "training", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers)]
    with log.open("w") as out:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    return Server(f"http://127.0.0.1:{port}", process, log)


def wait_ready(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerError(
                f"server exited with code {server.process.returncode}:\n{tail(server.log)}"
            )
        try:
            if httpx.get(f"{server.base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise ServerError(f"server not ready after {timeout:.0f}s:\n{tail(server.log)}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"
